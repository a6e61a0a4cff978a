"""Shared fixtures: the bundled fixture model (loaded once) and a socket guard."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))  # train_fixture's clip generator for held-out sets


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA (torch.cuda.is_available() is False)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def sv():
    from sensevoice_core import load_model
    return load_model("fixture", device="cpu")


class SocketAttempts(list):
    """Records every attempt to open a network connection; each attempt raises."""


@pytest.fixture
def no_network(monkeypatch) -> SocketAttempts:
    attempts = SocketAttempts()

    def refuse(name):
        def _refuse(*args, **kwargs):
            attempts.append((name, args[:2]))
            raise OSError(101, "Network is unreachable (blocked by test)")
        return _refuse

    monkeypatch.setattr(socket.socket, "connect", refuse("connect"))
    monkeypatch.setattr(socket.socket, "connect_ex", refuse("connect_ex"))
    monkeypatch.setattr(socket, "create_connection", refuse("create_connection"))
    monkeypatch.setattr(socket, "getaddrinfo", refuse("getaddrinfo"))
    return attempts


@pytest.fixture(scope="session")
def rng_factory():
    return lambda *seed: np.random.default_rng(list(seed))
