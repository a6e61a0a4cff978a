"""The SQL store: connections to a results database (a backend provides them), its reads
(reads.py), its writes (writes.py), its schema's life (migrations.py), and the user's own
read-only queries, within the reader's limits.

A backend (duckdb_file.py, ducklake.py) says how to open a writer and a confined read-only
reader; this class holds one transaction per write (retried only on contention), and the reader
every read borrows for a moment.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import duckdb

from laughtrack.errors import StoreError, captured
from laughtrack.store import QueryLimits, schema
from laughtrack.store.migrations import migrate, version
from laughtrack.store.reads import Reads
from laughtrack.store.retry import retry
from laughtrack.store.writes import Writes, transaction

# One writer at a time inside this process too: two task threads inserting the same video row in
# overlapping transactions would fail with a DuckDB write-write conflict.
_WRITE_LOCK = threading.RLock()

RELATIONS_SQL = ("SELECT table_name AS name, lower(table_type) AS kind FROM information_schema.tables "
                 "WHERE table_schema = 'main' AND table_catalog = current_database() ORDER BY kind DESC, name")
WRITE_RETRY_S = 600.0    # how long a writer keeps retrying commits that lost a race


class SqlStore(Reads, Writes):
    """Connections and the user's queries; a subclass provides `_connect_writer`, `_open_reader`,
    `_error`, `_fault`, `exists`."""

    url: str
    limits: QueryLimits = QueryLimits()
    auto_migrate = True     # a writer brings the schema up to date (else: `laughtrack db migrate`)
    constraints = True      # the catalog enforces primary keys (DuckLake has none)

    # --- backend hooks ---------------------------------------------------------------------
    def exists(self) -> bool:
        raise NotImplementedError

    def _connect_writer(self) -> duckdb.DuckDBPyConnection:
        """A connection that may write (retrying while others hold the database)."""
        raise NotImplementedError

    def _open_reader(self) -> duckdb.DuckDBPyConnection:
        """A read-only connection that cannot reach files outside the results (retrying likewise)."""
        raise NotImplementedError

    def _error(self, exc: duckdb.Error) -> Exception:
        """The StoreError a user sees for a failed statement."""
        raise NotImplementedError

    def _fault(self, exc: BaseException, context: str = "") -> StoreError:
        """The StoreError (a StoreFault for a disk or file fault) a user sees for a failed write."""
        raise NotImplementedError

    def _check_query(self, con: duckdb.DuckDBPyConnection, sql: str) -> None:
        """Refuse a user statement before it runs (a backend whose reader is not fully confined)."""

    def migrate(self) -> int:
        """Create or upgrade the schema; return the version found before (0: created)."""
        with _WRITE_LOCK:
            con = self._connect_writer()
            try:
                return retry(lambda: migrate(con, self.constraints), wait_s=60)
            except duckdb.Error as exc:
                raise self._fault(exc) from None
            finally:
                con.close()

    # --- connections -----------------------------------------------------------------------
    def _open_writer(self) -> duckdb.DuckDBPyConnection:
        con = self._connect_writer()
        try:
            if self.auto_migrate:
                migrate(con, self.constraints)
            elif version(con) != schema.SCHEMA_VERSION:
                raise StoreError(f"the results catalog {self.url!r} has schema v{version(con)}, this laughtrack "
                                 f"writes v{schema.SCHEMA_VERSION}: run `laughtrack db migrate`")
        except duckdb.Error as exc:
            con.close()
            raise self._fault(exc) from None
        except BaseException:
            con.close()
            raise
        return con

    def _write(self, work: Callable[[duckdb.DuckDBPyConnection], object], video_id: str | None):
        """Run `work` in one transaction, serialized with the other writers of `video_id` (None:
        appends that need no order); start again if it lost a race to commit. Anything but
        contention fails at once, in one line."""
        try:
            return retry(lambda: self._write_once(work, video_id), wait_s=WRITE_RETRY_S, first_delay_s=0.01,
                         max_delay_s=0.25)
        except duckdb.Error as exc:
            raise self._fault(exc) from None

    def _write_once(self, work: Callable[[duckdb.DuckDBPyConnection], object], video_id: str | None):
        with _WRITE_LOCK:
            con = self._open_writer()
            try:
                return transaction(con, work, video_id)
            finally:
                con.close()

    def _write_each(self, works: list[tuple[Callable[[duckdb.DuckDBPyConnection], object], str | None]]) -> list:
        """Each work in a transaction of its own (retried alone if it lost a race to commit), over one
        connection: opening a database and closing it (a checkpoint) once, not once per analysis.
        A work that fails gives its exception as its result; the others are written all the same."""
        with _WRITE_LOCK:
            con = self._open_writer()
            try:
                return [self._translated(captured(lambda w=work, v=video_id: retry(
                    lambda: transaction(con, w, v), wait_s=WRITE_RETRY_S, first_delay_s=0.01, max_delay_s=0.25)))
                    for work, video_id in works]
            finally:
                con.close()

    def _translated(self, value):
        """A duckdb error as the user's one line (other values unchanged)."""
        return self._fault(value) if isinstance(value, duckdb.Error) else value

    @contextmanager
    def _reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        con = self._open_reader()
        try:
            yield con
        except duckdb.Error as exc:
            raise self._error(exc) from None
        finally:
            con.close()

    def query(self, sql: str, params: list | None = None, max_rows: int | None = None) -> tuple[list[str], list[tuple]]:
        """One read-only statement within the reader's limits: (column names, rows, at most
        `max_rows`); StoreError for any error, any write, more than one statement, or a query that
        runs past its time or memory limit."""
        with self._reader() as con:
            self._check_one(con, sql)
            self._check_query(con, sql)
            timer = threading.Timer(self.limits.timeout_s, con.interrupt)
            timer.start()
            try:
                cur = con.execute(sql, params or [])
                rows = cur.fetchall() if max_rows is None else cur.fetchmany(max_rows)
                return ([d[0] for d in cur.description] if cur.description else []), rows
            except duckdb.InterruptException:
                raise StoreError(f"the query ran past its time limit ({self.limits.timeout_s:g} s) and was stopped; "
                                 "`laughtrack query --timeout-s S` (or LAUGHTRACK_QUERY_TIMEOUT_S) allows longer") from None
            except duckdb.OutOfMemoryException:
                raise StoreError(f"the query needs more than its memory limit ({self.limits.memory}) and was stopped; "
                                 "`laughtrack query --memory SIZE` (or LAUGHTRACK_QUERY_MEMORY) allows more") from None
            except duckdb.Error as exc:
                raise self._error(exc) from None
            finally:   # joined: a timer thread left running would free the connection it holds during the
                timer.cancel()      # interpreter's teardown, which aborts the process (duckdb/duckdb#13904)
                timer.join()

    @staticmethod
    def _check_one(con: duckdb.DuckDBPyConnection, sql: str) -> None:
        """Exactly one statement: `select 1; select 2` would otherwise show only the last result."""
        try:
            count = len(con.extract_statements(sql))
        except duckdb.Error as exc:
            raise StoreError(str(exc).splitlines()[0]) from None
        if count != 1:
            raise StoreError(f"give one SQL statement at a time (got {count})")

    def relations(self) -> tuple[list[str], list[tuple]]:
        """The tables and views a user can query (`laughtrack query --list`)."""
        return self.query(RELATIONS_SQL)
