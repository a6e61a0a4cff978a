"""Which database errors are worth waiting out, and what to tell the user about the others.

Only real contention is retried — another process holding a DuckDB file's lock, or a commit that
lost a race (DuckDB's and DuckLake's conflict errors, PostgreSQL's serialization failures) — with
backoff and jitter. A full disk, an I/O error or a corrupt file fails at once, in one line that
names the path and the fix: waiting would not mend it.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

WAIT_S = 120.0      # how long to wait for another process before giving up

# The messages DuckDB, DuckLake and PostgreSQL give when another transaction or process is in the way.
CONTENTION = re.compile(
    r"Could not set lock on file|write-write conflict|Transaction conflict|Conflict on (?:tuple deletion|update)!"
    r"|by (?:another|a different) transaction|could not serialize access|deadlock detected"
    r"|duplicate key value violates unique constraint \"ducklake_"
    r"|different configuration than existing connections", re.I)   # this process's own writer or reader
# (pattern, what it is, what to do): faults of the machine or the file, never retried.
FAULTS = (
    (re.compile(r"No space left on device", re.I), "no space left on the device",
     "free space there, or give another --db"),
    (re.compile(r"Disk quota exceeded", re.I), "the disk quota is used up", "free space there, or give another --db"),
    (re.compile(r"Read-only file system", re.I), "the file system is read-only", "give a writable --db"),
    (re.compile(r"Input/output error", re.I), "an I/O error (a failing disk?)", "check the disk"),
    (re.compile(r"Permission denied", re.I), "permission denied", "make it readable and writable, or give another --db"),
    (re.compile(r"Corrupt database file", re.I), "the database file is corrupt",
     "move it aside (its analyses are redone into a new file) or restore a backup"),
    (re.compile(r"not a valid DuckDB database file", re.I), "not a DuckDB database file", "give another --db"),
)


def contention(exc: BaseException) -> bool:
    """Whether `exc` is another writer or reader in the way (worth waiting for), and nothing worse."""
    text = str(exc)
    return bool(CONTENTION.search(text)) and fault(exc) is None


def fault(exc: BaseException) -> tuple[str, str] | None:
    """(what it is, what to do) when `exc` is a disk or file fault, else None."""
    text = str(exc)
    for pattern, what, fix in FAULTS:
        if pattern.search(text):
            return what, fix
    return None


def retry(attempt: Callable[[], T], transient: Callable[[BaseException], bool] = contention, wait_s: float = WAIT_S,
          first_delay_s: float = 0.05, max_delay_s: float = 2.0) -> T:
    """Call `attempt` until it returns; retry the exceptions `transient` accepts for up to `wait_s`."""
    deadline, delay = time.monotonic() + wait_s, first_delay_s
    while True:
        try:
            return attempt()
        except Exception as exc:  # noqa: BLE001 — re-raised unless transient and in time
            if not transient(exc) or time.monotonic() > deadline:
                raise
        time.sleep(delay * random.uniform(0.5, 1.5))
        delay = min(delay * 2, max_delay_s)
