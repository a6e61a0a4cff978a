"""Shared fixtures: the bundled fixture model (loaded once), a socket guard, the Prefect test
server, a place for test artifacts, and a guard that the suite writes nothing into the checkout."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))  # train_fixture's clip generator for held-out sets


def _unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The CLI reuses a Prefect server running at PREFECT_SERVER_API_HOST:PORT (127.0.0.1:4200): the
# suite points that at a port nothing listens on, so a developer's own server is never touched.
os.environ["PREFECT_SERVER_API_PORT"] = str(_unused_port())


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA (torch.cuda.is_available() is False)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def _checkout_state() -> set[str]:
    """Untracked and ignored paths of the checkout (bytecode and the venv aside)."""
    try:
        out = subprocess.run(["git", "status", "--porcelain", "--ignored", "--untracked-files=all", "--", ".",
                              ":!.venv", ":!**/__pycache__/**"], cwd=ROOT, capture_output=True, text=True,
                             timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return set()
    return set(out.stdout.splitlines()) if out.returncode == 0 else set()


def pytest_sessionstart(session):
    session.config.stash[_BEFORE] = _checkout_state()


def pytest_sessionfinish(session, exitstatus):
    """Fail the run if a test wrote into the checkout (tests write only under tmp dirs)."""
    before = session.config.stash.get(_BEFORE, None)
    if before is None:
        return
    new = sorted(_checkout_state() - before)
    if new:
        session.config.stash[_WROTE] = new
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, config):
    if config.stash.get(_WROTE, None):
        terminalreporter.write_line(f"FAILED: the tests wrote into the checkout: {config.stash[_WROTE]}", red=True)
    if config.stash.get(_ARTIFACTS, None):
        terminalreporter.write_line(f"test artifacts (screenshots, timings): {config.stash[_ARTIFACTS]}")


_BEFORE, _WROTE, _ARTIFACTS = pytest.StashKey[set](), pytest.StashKey[list](), pytest.StashKey[Path]()


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory, pytestconfig) -> Path:
    """Where tests leave what a person should look at: $LAUGHTRACK_TEST_ARTIFACTS, else a tmp dir."""
    chosen = os.environ.get("LAUGHTRACK_TEST_ARTIFACTS")
    path = Path(chosen) if chosen else tmp_path_factory.mktemp("artifacts")
    path.mkdir(parents=True, exist_ok=True)
    pytestconfig.stash[_ARTIFACTS] = path
    return path


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """One laughtrack cache (PCM, ONNX exports, model identity) for tests that need no private one."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def sv(cache_dir):
    """The fixture model as users get it on a CPU: backend auto (onnx-int8)."""
    from sensevoice_core import load_model
    return load_model("fixture", device="cpu", cache_dir=cache_dir)


@pytest.fixture(scope="session")
def sv_torch(cache_dir):
    """The fixture model through the funasr torch module (fp32), the reference."""
    from sensevoice_core import load_model
    return load_model("fixture", device="cpu", backend="torch", cache_dir=cache_dir)


class SocketAttempts(list):
    """Records every attempt to reach a non-loopback address; each such attempt raises."""


LOOPBACK = {"127.0.0.1", "::1", "localhost"}


@pytest.fixture
def no_network(monkeypatch) -> SocketAttempts:
    """Block the network but not loopback (the local Prefect server the flows report to)."""
    attempts = SocketAttempts()

    def guard(name, original, host_of):
        def _guarded(*args, **kwargs):
            host = host_of(args)
            if host in LOOPBACK:
                return original(*args, **kwargs)
            attempts.append((name, host))
            raise OSError(101, "Network is unreachable (blocked by test)")
        return _guarded

    def sock_host(args):  # (self, address)
        address = args[1] if len(args) > 1 else None
        return address[0] if isinstance(address, tuple) else address

    monkeypatch.setattr(socket.socket, "connect", guard("connect", socket.socket.connect, sock_host))
    monkeypatch.setattr(socket.socket, "connect_ex", guard("connect_ex", socket.socket.connect_ex, sock_host))
    monkeypatch.setattr(socket, "create_connection",
                        guard("create_connection", socket.create_connection, lambda a: a[0][0]))
    monkeypatch.setattr(socket, "getaddrinfo", guard("getaddrinfo", socket.getaddrinfo, lambda a: a[0]))
    return attempts


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory):
    """One Prefect test server for the session (it takes 12-20 s to start), with results and
    caches in a temp dir so that nothing leaks between sessions."""
    home = tmp_path_factory.mktemp("prefect")
    env = {"PREFECT_HOME": str(home), "PREFECT_LOCAL_STORAGE_PATH": str(home / "storage"),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    from prefect.settings import PREFECT_LOCAL_STORAGE_PATH, temporary_settings
    from prefect.testing.utilities import prefect_test_harness  # lazy: importing it is slow
    with temporary_settings({PREFECT_LOCAL_STORAGE_PATH: home / "storage"}):
        with prefect_test_harness(server_startup_timeout=120):
            yield home
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def rng_factory():
    return lambda *seed: np.random.default_rng(list(seed))
