"""The embedded default: one DuckDB file.

DuckDB locks the whole file across processes (one writer, or readers, never both), so a
connection is held only for one short transaction or one query, and opening retries with backoff
while another process has the file. Readers open it read-only with external access disabled, their
memory and threads limited and the configuration locked, and never migrate: a database is migrated
by the next write. A full disk, an I/O error or a corrupt file is one line naming the file, at once.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from laughtrack.errors import StoreError, StoreFault
from laughtrack.store import QueryLimits
from laughtrack.store.retry import fault, retry
from laughtrack.store.sql import SqlStore

READ_CONFIG = {"enable_external_access": False, "autoload_known_extensions": False,
               "autoinstall_known_extensions": False, "temp_directory": "", "lock_configuration": True}


class DuckDBFile(SqlStore):
    """Results in one DuckDB file, created (and migrated) by the first write."""

    def __init__(self, path: Path, limits: QueryLimits | None = None):
        self.path = Path(path)
        self.url = str(self.path)
        self.limits = limits or QueryLimits()

    def exists(self) -> bool:
        return self.path.exists()

    def _connect_writer(self) -> duckdb.DuckDBPyConnection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return retry(lambda: duckdb.connect(str(self.path)))
        except (duckdb.Error, OSError) as exc:
            raise self._fault(exc, "cannot open '{path}' for writing") from None

    def _open_reader(self) -> duckdb.DuckDBPyConnection:
        if not self.path.exists():
            raise StoreError(f"no results database at '{self.path}'; run `laughtrack analyze` first or pass --db")
        config = dict(READ_CONFIG, memory_limit=self.limits.memory, threads=self.limits.threads)
        try:
            return retry(lambda: duckdb.connect(str(self.path), read_only=True, config=config), max_delay_s=1.0)
        except duckdb.Error as exc:
            raise self._fault(exc, "cannot open '{path}'") from None

    def maintain(self, orphan_age_s: float, snapshot_age_s: float) -> dict[str, int]:
        """A DuckDB file needs only a checkpoint (its write-ahead log folded in)."""
        if not self.exists():
            return {"checkpoints": 0}
        con = self._open_writer()
        try:
            con.execute("CHECKPOINT")
        finally:
            con.close()
        return {"checkpoints": 1}

    def _fault(self, exc: BaseException, context: str = "'{path}'") -> StoreError:
        """One line for a failed open or write: the disk or file fault with its fix, or DuckDB's reason."""
        found = fault(exc)
        if found:
            what, fix = found
            return StoreFault(f"'{self.path}': {what}; {fix}")
        return StoreError(f"{context.format(path=self.path)}: {str(exc).splitlines()[0]}")

    def _error(self, exc: duckdb.Error) -> Exception:
        if fault(exc):
            return self._fault(exc)
        message = str(exc).splitlines()[0]
        if "read-only" in message.lower():
            message = f"the results database is read-only here; queries cannot change it ({message})"
        return StoreError(message)
