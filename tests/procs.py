"""Helpers for tests that run real processes: ports, waiting, stopping, a real Prefect server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check, timeout: float, step: float = 0.5, what: str = "condition"):
    """Poll `check` until it returns something true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def stop(proc: subprocess.Popen, signals=(signal.SIGINT, signal.SIGTERM, signal.SIGKILL)) -> None:
    """Stop a process group politely, then firmly (a worker needs two signals)."""
    for sig in signals:
        if proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            continue


def prefect_env(work: Path, port: int, **extra: str) -> dict[str, str]:
    """The environment of a process that talks to the Prefect server on `port`."""
    return dict(os.environ, PREFECT_HOME=str(work / "prefect"), PREFECT_API_URL=f"http://127.0.0.1:{port}/api",
                PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1", PWD=str(ROOT),
                PREFECT_WORKER_QUERY_SECONDS="1", PREFECT_LOCAL_STORAGE_PATH=str(work / "storage"),
                PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL="INFO", **extra)


def start_server(env: dict, port: int, log: Path) -> subprocess.Popen:
    """`prefect server start` on loopback; returns once it answers."""
    server = subprocess.Popen([BIN / "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                              env=env, cwd=log.parent, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                              start_new_session=True)

    def healthy():
        try:
            return urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2).status == 200
        except OSError:
            return False
    try:
        wait_for(healthy, 120, what="prefect server")
    except AssertionError:
        stop(server)
        raise
    return server


def run(env: dict, *cmd, timeout: float = 300, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """Run a command from the venv's bin (prefect, laughtrack) to completion."""
    return subprocess.run([BIN / cmd[0], *cmd[1:]], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)
