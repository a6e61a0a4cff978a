"""The upload inbox: which files are complete uploads, safely inside the inbox, and new.

Names come from uploaders and are never trusted: a path is used only if, resolved, it is still
inside the resolved inbox (a symlink out, or a loop, is ignored), and only files laughtrack would
analyse, that are not partial/temporary, and whose size has stopped changing.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from laughtrack.paths import MEDIA_SUFFIXES

# Names that browsers, rsync, curl and editors give files still being written.
PARTIAL_SUFFIXES = (".part", ".partial", ".tmp", ".temp", ".crdownload", ".download", ".filepart", "~", ".swp")


@dataclass(frozen=True, slots=True)
class Upload:
    """A complete file in the inbox."""

    path: Path
    size_bytes: int
    sha256: str


def inside(inbox: Path, path: Path) -> Path | None:
    """`path` resolved, if it is a regular file inside `inbox`; None otherwise (never raises)."""
    try:
        real = Path(path).resolve(strict=True)
        root = Path(inbox).resolve(strict=True)
    except (OSError, RuntimeError):   # missing, or a symlink loop
        return None
    if not real.is_relative_to(root) or not real.is_file():
        return None
    return real


def wanted(path: Path) -> bool:
    """A media name that is not hidden and not a partial/temporary upload."""
    name = path.name.lower()
    if name.startswith((".", "~")) or name.endswith(PARTIAL_SUFFIXES):
        return False
    return path.suffix.lower() in MEDIA_SUFFIXES


def candidates(inbox: Path) -> list[Path]:
    """Every wanted file under `inbox`, as paths inside it, in name order (for the catch-up scan)."""
    out = []
    for root, dirs, files in os.walk(inbox, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            p = Path(root) / name
            if wanted(p) and inside(inbox, p) is not None:
                out.append(p)
    return out


def settled(path: Path, quiet_s: float = 2.0, poll_s: float = 0.25, timeout_s: float = 3600.0) -> int | None:
    """Wait until size and mtime have not changed for `quiet_s`; the size, or None if it vanished."""
    deadline = time.monotonic() + timeout_s
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        try:
            st = os.stat(path)
        except OSError:
            return None
        now = (st.st_size, st.st_mtime_ns)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_s and st.st_size > 0:
            return st.st_size
        time.sleep(poll_s)
    return None
