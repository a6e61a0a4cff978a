"""The laughtrack exception family. Messages say what failed, the value, and what to do."""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno


class LaughtrackError(Exception):
    """Base class: a user-facing failure with a one-line message."""


class TimelineError(LaughtrackError, ValueError):
    """A synth timeline is malformed."""


class MediaError(LaughtrackError):
    """ffmpeg could not read or write a media file."""


class NoAudioError(MediaError):
    """A media file has no audio stream."""


class StillWritingError(MediaError):
    """A file changed while it was being read: an upload or recording still in progress."""


class StoreError(LaughtrackError):
    """The results database cannot be opened, read or written."""


class EnvironmentFault(LaughtrackError):
    """The machine, not the file: a full disk, an I/O error, a corrupt database. Nothing about the
    file is recorded (no `failures` row); fix what the message names and run again."""


class StoreFault(StoreError, EnvironmentFault):
    """The results database's disk or file is at fault (full, failing, corrupt)."""


class DiskFault(MediaError, EnvironmentFault):
    """The cache (or another folder laughtrack writes) is full, read-only or failing."""


# OSError numbers that mean "the disk", not "the file": (what it is, what to do).
DISK_ERRNOS = {errno.ENOSPC: ("no space left on the device", "free space there or point it elsewhere"),
               errno.EDQUOT: ("the disk quota is used up", "free space there or point it elsewhere"),
               errno.EROFS: ("the file system is read-only", "point it at a writable folder"),
               errno.EIO: ("an I/O error (a failing disk?)", "check the disk"),
               errno.EACCES: ("permission denied", "make it writable or point it elsewhere")}


def disk_fault(exc: OSError, where: str, what: str = "") -> DiskFault | None:
    """A DiskFault naming `where` and the fix, for an OSError that is the disk's doing (else None)."""
    if exc.errno not in DISK_ERRNOS:
        return None
    reason, fix = DISK_ERRNOS[exc.errno]
    return DiskFault(f"'{where}': {reason}{' while writing ' + what if what else ''}; {fix}")


def orchestration(exc: BaseException) -> bool:
    """Whether an error is the orchestration's (Prefect's server gone, an interrupt, a cancelled
    run), not the file's: such a file is not analysed this time and has no `failures` row."""
    if isinstance(exc, (KeyboardInterrupt, asyncio.CancelledError, concurrent.futures.CancelledError)):
        return True
    root = type(exc).__module__.split(".")[0]
    return root in ("httpx", "httpcore", "prefect")


def captured(step, *args):
    """`step(*args)`, or the exception it raised: one item's failure becomes that item's result (and
    its failures row) instead of stopping the others of its group."""
    try:
        return step(*args)
    except Exception as exc:  # noqa: BLE001 — recorded with its type by the caller
        return exc
