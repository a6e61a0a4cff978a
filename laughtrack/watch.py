"""`laughtrack watch`: turn "a file landed in the inbox" into one Prefect event (or one analysis).

Catch-up scan first, then watchfiles. A file is handled once its size has been stable for
`quiet_s`, once per content hash (a second copy or a rename is recognized), and only if it is
inside the inbox. The event carries the path and the content hash; the analyze-upload
deployment's trigger turns it into a flow run.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from laughtrack import inbox as inbox_mod, media

EVENT = "laughtrack.video.uploaded"


def emit_upload(path: Path, sha256: str, size_bytes: int) -> str:
    """Emit the upload event to the configured Prefect API; return the event id."""
    from prefect.events import emit_event
    event = emit_event(event=EVENT, resource={"prefect.resource.id": f"laughtrack.video.{sha256}",
                                              "prefect.resource.name": path.name},
                       payload={"path": str(path), "sha256": sha256, "size_bytes": size_bytes})
    if event is None:
        raise RuntimeError("Prefect did not emit the event (no API configured?)")
    return str(event.id)


class Watcher:
    """Dedupes by content hash and hands each complete upload to `handle` exactly once."""

    def __init__(self, inbox: Path, handle: Callable[[Path, str, int], str], known: set[str] | None = None,
                 quiet_s: float = 2.0, log: Callable[[str], None] = print):
        self.inbox = Path(inbox)
        self.handle, self.quiet_s, self.log = handle, quiet_s, log
        self.seen: set[str] = set(known or ())
        self._pending: set[Path] = set()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="settle")

    def offer(self, path: Path) -> None:
        """A path changed: if wanted and inside the inbox, wait for it to settle, then handle it."""
        path = Path(path)
        if not inbox_mod.wanted(path):
            return
        if inbox_mod.inside(self.inbox, path) is None:
            if path.is_symlink() or path.exists():
                self.log(f"ignored {path}: not a regular file inside the inbox")
            return
        with self._lock:
            if path in self._pending:
                return
            self._pending.add(path)
        self._pool.submit(self._settle, path)

    def _settle(self, path: Path) -> None:
        try:
            size = inbox_mod.settled(path, self.quiet_s)
            real = inbox_mod.inside(self.inbox, path)
            if size is None or real is None:
                return
            sha = media.content_sha256(real)   # StillWritingError if it changed: logged, re-offered on change
            with self._lock:
                if sha in self.seen:
                    self.log(f"skipped {path.name}: same content as an upload already handled ({sha[:12]})")
                    return
                self.seen.add(sha)
            outcome = self.handle(path.absolute(), sha, size)
            self.log(f"{path.name}: {outcome}")
        except Exception as exc:  # noqa: BLE001 — one bad upload never stops the watcher
            self.log(f"{path.name}: {type(exc).__name__}: {exc}")
        finally:
            with self._lock:
                self._pending.discard(path)

    def catch_up(self) -> None:
        """Offer every file already in the inbox."""
        for path in inbox_mod.candidates(self.inbox):
            self.offer(path)

    def drain(self) -> None:
        """Wait until every offered file is handled."""
        self._pool.shutdown(wait=True)
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="settle")

    def run(self, stop: threading.Event | None = None) -> None:
        """Catch up, then follow the inbox until `stop` is set; a signal (Ctrl-C) raises
        KeyboardInterrupt at once, without waiting for the uploads in hand."""
        from watchfiles import Change, watch
        self.catch_up()
        for changes in watch(self.inbox, stop_event=stop, recursive=True, debounce=500, step=100,
                             raise_interrupt=True):
            for change, name in changes:
                if change in (Change.added, Change.modified):
                    self.offer(Path(name))
        self._pool.shutdown(wait=True)
