"""Every SQL statement laughtrack runs, over DuckDB connections that a backend provides.

A backend (duckdb_file.py) says how to open a migrated writer and a confined read-only reader;
this class holds the statements: one transaction per analysis, the "is it done?" questions, the
user's read-only queries and the data every report shows.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime, timezone

import duckdb
import pyarrow as pa

from laughtrack import faults
from laughtrack.errors import StoreError
from laughtrack.records import Failure, Video
from laughtrack.store import schema
from laughtrack.store.rows import DONE, AnalysisRows, failure_table, path_row

# One writer at a time inside this process too: two task threads inserting the same video row in
# overlapping transactions would fail with a DuckDB write-write conflict.
_WRITE_LOCK = threading.RLock()

RELATIONS_SQL = ("SELECT table_name AS name, lower(table_type) AS kind FROM information_schema.tables "
                 "WHERE table_schema = 'main' ORDER BY kind DESC, name")
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


def now() -> datetime:
    return datetime.now(timezone.utc)


class SqlStore:
    """The statements; a subclass provides `_open_writer`, `_open_reader`, `exists` and `url`."""

    url: str

    # --- backend hooks ---------------------------------------------------------------------
    def exists(self) -> bool:
        raise NotImplementedError

    def _open_writer(self) -> duckdb.DuckDBPyConnection:
        """A connection that may write, its schema migrated (retrying while others hold it)."""
        raise NotImplementedError

    def _open_reader(self) -> duckdb.DuckDBPyConnection:
        """A read-only connection that cannot reach files outside the results (retrying likewise)."""
        raise NotImplementedError

    def _error(self, exc: duckdb.Error) -> Exception:
        """The StoreError a user sees for a failed statement."""
        raise NotImplementedError

    # --- connections -----------------------------------------------------------------------
    @contextmanager
    def _transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with _WRITE_LOCK:
            con = self._open_writer()
            try:
                con.execute("BEGIN TRANSACTION")
                try:
                    yield con
                    con.execute("COMMIT")
                except BaseException:
                    con.execute("ROLLBACK")
                    raise
            finally:
                con.close()

    @contextmanager
    def _reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        con = self._open_reader()
        try:
            yield con
        finally:
            con.close()

    # --- writes ----------------------------------------------------------------------------
    def write_analysis(self, rows: AnalysisRows) -> bool:
        """Write one analysis in one transaction; False (and no new rows) when it is already there."""
        with self._transaction() as con:
            at = now()
            exists = con.execute("SELECT count(*) FROM analyses WHERE analysis_id = ?",
                                 [rows.job.analysis_id]).fetchall()[0][0]
            self._upsert_video(con, rows.video_row(rows.job.path, at), rows.job.video.video_id, rows.job.path, at)
            if exists:
                return False
            _insert(con, "audio_streams", rows.stream_row(), or_ignore=True)
            _insert(con, "analyses", rows.analysis_row(at))
            for table, data in rows.results().items():
                _insert(con, table, data)
                faults.point(f"store:{table}")
        return True

    def note_path(self, video: Video, path: str) -> None:
        """Record that a known video was seen under `path` (a renamed copy), no new analysis."""
        at = now()
        with self._transaction() as con:
            self._upsert_video(con, schema.TABLES["videos"].rows([dict(asdict(video), path=path, first_seen_at=at)]),
                               video.video_id, path, at)

    def _upsert_video(self, con, video_row: pa.Table, video_id: str, path: str, at: datetime) -> None:
        _insert(con, "videos", video_row, or_ignore=True)
        _insert(con, "video_paths", path_row(video_id, path, at), or_ignore=True)

    def record_failures(self, failures: list[Failure]) -> None:
        """Append one `failures` row per file or stream that could not be analysed."""
        if failures:
            with self._transaction() as con:
                _insert(con, "failures", failure_table(failures, now()))

    # --- reads -----------------------------------------------------------------------------
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

    def query(self, sql: str, params: list | None = None) -> tuple[list[str], list[tuple]]:
        """One read-only statement: (column names, rows); StoreError for any error or write."""
        with self._reader() as con:
            try:
                cur = con.execute(sql, params or [])
                return ([d[0] for d in cur.description] if cur.description else []), cur.fetchall()
            except duckdb.Error as exc:
                raise self._error(exc) from None

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

    def video_report_data(self, analysis_id: str) -> dict[str, list[dict]]:
        """Everything the per-video report shows, keyed like VIDEO_REPORT_SQL."""
        with self._reader() as con:
            return {key: _dicts(con, sql, [analysis_id]) for key, sql in VIDEO_REPORT_SQL.items()}

    def collection_report_data(self) -> dict[str, list[dict]]:
        """The leaderboard and every per-minute row of the latest analyses."""
        with self._reader() as con:
            return {key: _dicts(con, sql) for key, sql in COLLECTION_SQL.items()}


def migrate(con: duckdb.DuckDBPyConnection, constraints: bool = True) -> int:
    """Bring the schema up to SCHEMA_VERSION (one transaction); return the version found before."""
    con.execute(schema.TABLES["schema_version"].ddl().replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS"))
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
    return con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchall()[0][0]


def _insert(con: duckdb.DuckDBPyConnection, table: str, rows: pa.Table, or_ignore: bool = False) -> None:
    """Append Arrow rows to a declared table by column name (table names come from the schema)."""
    if table not in schema.TABLES:
        raise ValueError(f"{table!r} is not a declared table")
    con.register("_rows", rows)
    try:
        con.execute(f"INSERT {'OR IGNORE ' if or_ignore else ''}INTO {table} BY NAME SELECT * FROM _rows")
    finally:
        con.unregister("_rows")


def _dicts(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[dict]:
    cur = con.execute(sql, params or [])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]
