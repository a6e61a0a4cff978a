"""Every SQL statement laughtrack runs, over DuckDB connections that a backend provides.

A backend (duckdb_file.py, ducklake.py) says how to open a writer and a confined read-only
reader; this class holds the statements: one transaction per analysis, the "is it done?"
questions, the user's read-only queries and the data every report shows.

Exactly once, on any number of writers: every write transaction about a video first updates the
row of that video's write lock (schema.lock_table), then checks what is already there, then
inserts only what is new. Two writers of one video both update that row, so one of them fails to
commit (a DuckLake conflict; a DuckDB file admits one writing process at a time anyway) and
retries from the start, when it sees the winner's rows. Without that step two writers could both
find an analysis absent and both commit it: DuckLake has no UNIQUE constraint. Writers of
different videos take different locks (mostly: 16 of them), so they seldom retry.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime, timezone

import duckdb
import pyarrow as pa

from laughtrack import faults
from laughtrack.errors import StoreError, captured
from laughtrack.records import Failure, Video
from laughtrack.store import QueryLimits, schema
from laughtrack.store.retry import retry
from laughtrack.store.rows import DONE, AnalysisRows, failure_table, path_row

# One writer at a time inside this process too: two task threads inserting the same video row in
# overlapping transactions would fail with a DuckDB write-write conflict.
_WRITE_LOCK = threading.RLock()

RELATIONS_SQL = ("SELECT table_name AS name, lower(table_type) AS kind FROM information_schema.tables "
                 "WHERE table_schema = 'main' AND table_catalog = current_database() ORDER BY kind DESC, name")
SERIALIZE_SQL = "UPDATE {lock} SET writes = writes + 1"
WRITE_RETRY_S = 600.0    # how long a writer keeps retrying commits that lost a race
ENGAGEMENT_SQL = ("SELECT analysis_id, path, stream_index, duration_s, laughter_s, applause_s, laughs, "
                  "laughs_per_min, applause_per_min, engagement_score FROM engagement "
                  "WHERE analysis_id IN (SELECT unnest(?)) ORDER BY path, stream_index")
MINUTES_SQL = ("SELECT * FROM minute_density WHERE analysis_id IN (SELECT unnest(?)) "
               "ORDER BY analysis_id, minute")
DONE_SQL = "SELECT analysis_id FROM analyses WHERE status = ? AND analysis_id IN (SELECT unnest(?))"
DONE_CONTENTS_SQL = ("SELECT DISTINCT v.sha256 FROM videos v JOIN analyses a USING (video_id) "
                     "WHERE a.status = ? AND a.config_key = ?")
VIDEO_REPORT_SQL = {
    "summary": "SELECT e.*, a.model_id, a.model_sha256, a.params_json, a.code_version, a.device, "
               "a.finished_at FROM engagement e JOIN analyses a USING (analysis_id) WHERE analysis_id = ?",
    "language": "SELECT language, sum(end_s - start_s) AS seconds FROM segments WHERE analysis_id = ? "
                "AND language IS NOT NULL GROUP BY language ORDER BY seconds DESC, language",
    "minutes": "SELECT * FROM minute_density WHERE analysis_id = ? ORDER BY minute",
    "timeline": "SELECT start_s, end_s, p_laughter, p_applause, p_speech FROM windows WHERE analysis_id = ? "
                "ORDER BY start_s",
    "events": "SELECT label, start_s, end_s, peak_p, mean_p FROM events WHERE analysis_id = ? ORDER BY start_s",
    "emotions": "SELECT CAST(floor(start_s / 60) AS INTEGER) AS minute, avg(p_happy) AS happy, avg(p_sad) AS sad, "
                "avg(p_angry) AS angry, avg(p_neutral) AS neutral, avg(p_surprised) AS surprised, "
                "avg(p_fearful) + avg(p_disgusted) AS other, avg(p_emo_unknown) AS unknown "
                "FROM windows WHERE analysis_id = ? GROUP BY ALL ORDER BY minute",
    "languages": "SELECT CAST(floor(start_s / 60) AS INTEGER) AS minute, language, count(*) AS windows "
                 "FROM windows WHERE analysis_id = ? AND event = 'Speech' GROUP BY ALL ORDER BY minute, language",
    "moments": "SELECT m.rank, m.label, m.start_s, m.end_s, m.seconds, m.peak_p, m.mean_p, "
               "(SELECT trim(coalesce(string_agg(t.text, '' ORDER BY t.start_s), '')) FROM tokens t "
               " WHERE t.analysis_id = m.analysis_id AND t.end_s > m.start_s - 10 AND t.start_s < m.start_s) "
               "AS said_before FROM top_moments m WHERE m.analysis_id = ? AND m.rank <= 10 ORDER BY m.rank",
}
COLLECTION_SQL = {
    "leaderboard": "SELECT video_id, stream_index, path, duration_s, laughs_per_min, applause_per_min, "
                   "laughter_s, applause_s, engagement_score, coverage FROM engagement "
                   "ORDER BY engagement_score DESC NULLS LAST, video_id, stream_index",
    "minutes": "SELECT d.laughter_s, d.applause_s FROM minute_density d "
               "JOIN latest_analyses a USING (analysis_id)",
}
TARGETS_SQL = "SELECT video_id, stream_index, analysis_id FROM engagement ORDER BY video_id, stream_index"
DURATIONS_SQL = "SELECT analysis_id, duration_s FROM analyses WHERE analysis_id IN (SELECT unnest(?))"
EVENTS_SQL = "SELECT label, start_s, end_s, peak_p, mean_p FROM events WHERE analysis_id = ? ORDER BY start_s, label"
WINDOW_PROBS_SQL = ("SELECT start_s, end_s, " + ", ".join(schema.EVENT_COLUMNS.values())
                    + " FROM windows WHERE analysis_id = ? ORDER BY start_s, end_s")
EVENT_SET_SQL = "SELECT options_json FROM event_sets WHERE name = ? ORDER BY saved_at DESC LIMIT 1"
# A failure stands until its file (or that stream of it) is analysed; then it is closed, not deleted.
OPEN_FAILURES = ("resolved_at IS NULL AND ((sha256 = ? AND (stream_index IS NULL OR stream_index = ?)) "
                 "OR (sha256 IS NULL AND path = ?))")
FIND_VIDEO_SQL = ("SELECT DISTINCT video_id FROM latest_analyses WHERE starts_with(video_id, ?) "
                  "UNION SELECT DISTINCT p.video_id FROM video_paths p JOIN latest_analyses a USING (video_id) "
                  "WHERE p.path = ? ORDER BY 1 LIMIT 10")
TRANSCRIPT_SQL = "SELECT start_s, end_s, raw_text, text FROM segments WHERE analysis_id = ? ORDER BY start_s"


def now() -> datetime:
    return datetime.now(timezone.utc)


class SqlStore:
    """The statements; a subclass provides `_connect_writer`, `_open_reader`, `_error`, `exists`."""

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
            elif _version(con) != schema.SCHEMA_VERSION:
                raise StoreError(f"the results catalog {self.url!r} has schema v{_version(con)}, this laughtrack "
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
                return _transaction(con, work, video_id)
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
                    lambda: _transaction(con, w, v), wait_s=WRITE_RETRY_S, first_delay_s=0.01, max_delay_s=0.25)))
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

    # --- writes ----------------------------------------------------------------------------
    def write_analysis(self, rows: AnalysisRows) -> bool:
        """Write one analysis in one transaction; False (and no new rows) when it is already there."""
        return self._write(lambda con: _write_analysis(con, rows), rows.job.video.video_id)

    def write_analyses(self, many: list[AnalysisRows]) -> list[bool | Exception]:
        """`write_analysis` of each, one transaction each, over one connection; a failed write's
        result is its exception."""
        return self._write_each([(lambda con, r=rows: _write_analysis(con, r), rows.job.video.video_id)
                                 for rows in many])

    def note_path(self, video: Video, path: str, stream_index: int) -> None:
        """Record that a known video was seen under `path` (a renamed copy), no new analysis; its
        failures (of that stream) are closed, since it is analysed."""
        at = now()
        row = schema.TABLES["videos"].rows([dict(asdict(video), path=path, first_seen_at=at)])

        def work(con):
            _add_video(con, row, video.video_id, path, at)
            _close_failures(con, video.sha256, stream_index, path, at)
        self._write(work, video.video_id)

    def record_failures(self, failures: list[Failure]) -> None:
        """Append one `failures` row per file or stream that could not be analysed because of itself
        (not the machine's or the orchestration's faults: Failure.recorded)."""
        rows = [f for f in failures if f.recorded]
        if rows:
            self._write(lambda con: _insert(con, "failures", failure_table(rows, now())), None)

    def save_event_set(self, name: str, options_json: str, source: str, f1_before: float, f1_after: float) -> None:
        """Append a named event parameter set (the newest row of a name is the one used)."""
        row = schema.TABLES["event_sets"].rows([dict(name=name, options_json=options_json, source=source,
                                                     f1_before=f1_before, f1_after=f1_after, saved_at=now())])
        self._write(lambda con: _insert(con, "event_sets", row), None)

    # --- reads -----------------------------------------------------------------------------
    def event_set(self, name: str) -> str | None:
        """The options JSON saved under `name` (newest), or None."""
        if not self.exists():
            return None
        with self._reader() as con:
            if _version(con) < 3:
                return None
            rows = con.execute(EVENT_SET_SQL, [name]).fetchall()
        return rows[0][0] if rows else None

    def durations(self, analysis_ids: list[str]) -> dict[str, float]:
        """analysis_id → duration_s of these analyses (latest or not)."""
        with self._reader() as con:
            return dict(con.execute(DURATIONS_SQL, [analysis_ids]).fetchall())

    def events(self, analysis_id: str) -> list[dict]:
        """The timed events of an analysis (label, start_s, end_s, peak_p, mean_p), in time order."""
        with self._reader() as con:
            return _dicts(con, EVENTS_SQL, [analysis_id])

    def window_probs(self, analysis_id: str) -> tuple[list[str], list[tuple]]:
        """(columns, rows) of an analysis' windows: start_s, end_s and every event probability."""
        with self._reader() as con:
            cur = con.execute(WINDOW_PROBS_SQL, [analysis_id])
            return [d[0] for d in cur.description], cur.fetchall()

    def done_analyses(self, analysis_ids: list[str]) -> set[str]:
        """Which of these analyses are complete in the database."""
        if not analysis_ids or not self.exists():
            return set()
        with self._reader() as con:
            return {r[0] for r in con.execute(DONE_SQL, [DONE, analysis_ids]).fetchall()}

    def done_contents(self, config_key: str) -> set[str]:
        """Content hashes with a complete analysis under this configuration (ConfigKey.id)."""
        if not self.exists():
            return set()
        with self._reader() as con:
            if _version(con) < 2:       # older databases have no config_key: nothing matches
                return set()
            return {r[0] for r in con.execute(DONE_CONTENTS_SQL, [DONE, config_key]).fetchall()}

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
            finally:
                timer.cancel()

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

    def minute_table(self, analysis_ids: list[str]) -> list[dict]:
        """minute_density rows of these analyses, ordered."""
        with self._reader() as con:
            return _dicts(con, MINUTES_SQL, [analysis_ids])

    def engagement(self, analysis_ids: list[str]) -> list[dict]:
        """The engagement rows of these analyses (when each is its stream's latest)."""
        if not analysis_ids:
            return []
        with self._reader() as con:
            return _dicts(con, ENGAGEMENT_SQL, [analysis_ids])

    def report_targets(self, video_ids: list[str] | None = None) -> list[dict]:
        """Latest analyses (one per video stream) to report on: all, or those of `video_ids`."""
        with self._reader() as con:
            rows = _dicts(con, TARGETS_SQL)
        if video_ids is not None:
            missing = sorted(set(video_ids) - {r["video_id"] for r in rows})
            if missing:
                raise StoreError(f"no analysed video with id {', '.join(missing)}; "
                                 "see `laughtrack query \"SELECT video_id, path FROM engagement\"`")
            rows = [r for r in rows if r["video_id"] in video_ids]
        return rows

    def find_videos(self, ref: str) -> list[str]:
        """The analysed videos an id prefix or a stored path names (at most 10, sorted)."""
        ref = ref.strip()
        with self._reader() as con:
            prefix = ref.lower() if ref and all(c in "0123456789abcdefABCDEF" for c in ref) else "\x00"
            return [r[0] for r in con.execute(FIND_VIDEO_SQL, [prefix, ref]).fetchall()]

    def transcript(self, analysis_id: str) -> list[dict]:
        """The transcribed speech chunks of an analysis, in time order."""
        with self._reader() as con:
            return _dicts(con, TRANSCRIPT_SQL, [analysis_id])

    def video_report_data(self, analysis_id: str) -> dict[str, list[dict]]:
        """Everything the per-video report shows, keyed like VIDEO_REPORT_SQL."""
        with self._reader() as con:
            return {key: _dicts(con, sql, [analysis_id]) for key, sql in VIDEO_REPORT_SQL.items()}

    def collection_report_data(self) -> dict[str, list[dict]]:
        """The leaderboard and every per-minute row of the latest analyses."""
        with self._reader() as con:
            return {key: _dicts(con, sql) for key, sql in COLLECTION_SQL.items()}


def _write_analysis(con: duckdb.DuckDBPyConnection, rows: AnalysisRows) -> bool:
    at = now()
    exists = con.execute("SELECT count(*) FROM analyses WHERE analysis_id = ?", [rows.job.analysis_id]).fetchall()[0][0]
    _add_video(con, rows.video_row(rows.job.path, at), rows.job.video.video_id, rows.job.path, at)
    _close_failures(con, rows.job.video.sha256, rows.job.stream_index, rows.job.path, at)
    if exists:
        return False
    _insert(con, "audio_streams", rows.stream_row(), only_new=True)
    _insert(con, "analyses", rows.analysis_row(at))
    for table, data in rows.results().items():
        _insert(con, table, data)
        faults.point(f"store:{table}")
    return True


def _close_failures(con: duckdb.DuckDBPyConnection, sha256: str, stream_index: int, path: str, at: datetime) -> None:
    """Close the open failures of this content and stream (or of this path, when it could not be
    hashed): the file is analysed now. Looked for first, so most writes never update the table."""
    where = [sha256, stream_index, path]
    if con.execute(f"SELECT count(*) FROM failures WHERE {OPEN_FAILURES}", where).fetchall()[0][0]:
        con.execute(f"UPDATE failures SET resolved_at = ? WHERE {OPEN_FAILURES}", [at, *where])


def _add_video(con: duckdb.DuckDBPyConnection, video_row: pa.Table, video_id: str, path: str, at: datetime) -> None:
    _insert(con, "videos", video_row, only_new=True)
    _insert(con, "video_paths", path_row(video_id, path, at), only_new=True)


def _transaction(con: duckdb.DuckDBPyConnection, work: Callable[[duckdb.DuckDBPyConnection], object],
                 video_id: str | None):
    """`work` in one transaction, serialized with the other writers of `video_id` (None: no order)."""
    con.execute("BEGIN TRANSACTION")
    try:
        if video_id is not None:
            con.execute(SERIALIZE_SQL.format(lock=schema.lock_table(video_id)))
        result = work(con)
        con.execute("COMMIT")
        return result
    except BaseException:
        _rollback(con)
        raise


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    """Roll back; a transaction that failed to commit is already gone (DuckLake says so)."""
    try:
        con.execute("ROLLBACK")
    except duckdb.Error:
        pass


def migrate(con: duckdb.DuckDBPyConnection, constraints: bool = True) -> int:
    """Bring the schema up to SCHEMA_VERSION (one transaction); return the version found before."""
    if not _has_table(con, "schema_version"):
        con.execute(schema.TABLES["schema_version"].ddl())
    found = _version(con)
    if found > schema.SCHEMA_VERSION:
        raise StoreError(f"database schema v{found} is newer than this laughtrack (v{schema.SCHEMA_VERSION}); "
                         "upgrade laughtrack")
    if found == schema.SCHEMA_VERSION:
        return found
    con.execute("BEGIN TRANSACTION")
    try:
        if found == 0:
            for statement in schema.create_statements(constraints)[1:]:   # [0] is schema_version
                con.execute(statement)
        else:
            for version in range(found, schema.SCHEMA_VERSION):
                for statement in schema.MIGRATIONS[version]:
                    con.execute(statement)
            for view in schema.VIEWS:
                con.execute(view.ddl())
        con.execute("INSERT INTO schema_version VALUES (?, ?)", [schema.SCHEMA_VERSION, now()])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return found


def _version(con: duckdb.DuckDBPyConnection) -> int:
    """The schema version of the database (0 when it has no laughtrack tables yet)."""
    if not _has_table(con, "schema_version"):
        return 0
    return con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchall()[0][0]


def _has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM information_schema.tables WHERE table_catalog = current_database() "
                            "AND table_schema = 'main' AND table_name = ?", [name]).fetchall()[0][0])


def _insert(con: duckdb.DuckDBPyConnection, table: str, rows: pa.Table, only_new: bool = False) -> None:
    """Append Arrow rows to a declared table by column name (table names come from the schema);
    `only_new`: skip rows whose primary key is already there (checked, not constrained: DuckLake
    has no keys, and the write lock makes the check safe)."""
    spec = schema.TABLES.get(table)
    if spec is None:
        raise ValueError(f"{table!r} is not a declared table")
    new = ""
    if only_new:
        match = " AND ".join(f't."{k}" = r."{k}"' for k in spec.primary_key)
        new = f" WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE {match})"
    con.register("_rows", rows)
    try:
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _rows r{new}")
    finally:
        con.unregister("_rows")


def _dicts(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[dict]:
    cur = con.execute(sql, params or [])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]
