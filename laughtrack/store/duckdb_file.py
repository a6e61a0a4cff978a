"""The embedded default: one DuckDB file.

DuckDB locks the whole file across processes (one writer, or readers, never both), so a
connection is held only for one short transaction or one query, and opening retries with backoff
while another process has the file. Readers open it read-only with external access disabled and
the configuration locked, and never migrate: a database is migrated by the next write.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from laughtrack.errors import StoreError
from laughtrack.store.retry import retry
from laughtrack.store.sql import SqlStore

READ_CONFIG = {"enable_external_access": False, "autoload_known_extensions": False,
               "autoinstall_known_extensions": False, "lock_configuration": True}


def _locked(exc: BaseException) -> bool:
    return isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower()


class DuckDBFile(SqlStore):
    """Results in one DuckDB file, created (and migrated) by the first write."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.url = str(self.path)

    def exists(self) -> bool:
        return self.path.exists()

    def _connect_writer(self) -> duckdb.DuckDBPyConnection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return retry(lambda: duckdb.connect(str(self.path)), _locked)
        except duckdb.Error as exc:
            raise StoreError(f"cannot open '{self.path}' for writing: {str(exc).splitlines()[0]}") from None

    def _open_reader(self) -> duckdb.DuckDBPyConnection:
        if not self.path.exists():
            raise StoreError(f"no results database at '{self.path}'; run `laughtrack analyze` first or pass --db")
        try:
            return retry(lambda: duckdb.connect(str(self.path), read_only=True, config=READ_CONFIG), _locked,
                         max_delay_s=1.0)
        except duckdb.Error as exc:
            raise StoreError(f"cannot open '{self.path}': {str(exc).splitlines()[0]}") from None

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

    def _error(self, exc: duckdb.Error) -> Exception:
        message = str(exc).splitlines()[0]
        if "read-only" in message.lower():
            message = f"the results database is read-only here; queries cannot change it ({message})"
        return StoreError(message)
