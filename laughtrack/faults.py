"""Named fault-injection points for crash-safety tests (the SQLite way: test the crash, not a mock).

The edge arms one point explicitly (the CLI and the flows' entry points pass LAUGHTRACK_FAULT and
LAUGHTRACK_FAULT_FILE to `arm`);
reaching an armed `point(name)` writes the marker file and then blocks, so a test can `kill -9`
the process at exactly that moment. Unarmed, a point costs one comparison.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

FAULT_VARS = ("LAUGHTRACK_FAULT", "LAUGHTRACK_FAULT_FILE")    # (point, marker file): crash tests only
_armed: tuple[str | None, str | None] = (None, None)


def arm(name: str | None, marker: str | None = None) -> None:
    """Make `point(name)` block (None disarms); `marker` is written when it is reached."""
    global _armed
    _armed = (name or None, marker or None)


def point(name: str) -> None:
    """Block here forever (after signalling) when this point is armed."""
    armed, marker = _armed
    if armed != name:
        return
    if marker:
        Path(marker).write_text(f"{name} {os.getpid()}\n")
    while True:
        time.sleep(60)
