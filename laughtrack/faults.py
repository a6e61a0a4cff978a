"""Named fault-injection points for crash-safety tests (the SQLite way: test the crash, not a mock).

With LAUGHTRACK_FAULT=<name>, reaching `point(<name>)` writes the file named by
LAUGHTRACK_FAULT_FILE and then blocks, so a test can `kill -9` the process at exactly that
moment. Without the variable, a point costs one dict lookup.
"""

from __future__ import annotations

import os
import time
from pathlib import Path


def point(name: str) -> None:
    """Block here forever (after signalling) when the environment asks for a fault at `name`."""
    if os.environ.get("LAUGHTRACK_FAULT") != name:
        return
    marker = os.environ.get("LAUGHTRACK_FAULT_FILE")
    if marker:
        Path(marker).write_text(f"{name} {os.getpid()}\n")
    while True:
        time.sleep(60)
