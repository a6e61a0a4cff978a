"""The DuckDB results file: schema, migrations, and every SQL statement laughtrack runs.

DuckDB locks the whole file across processes (one writer, or readers, never both), so writers here
hold a connection only for one short transaction and retry with backoff while another process has
the file; readers (`laughtrack query`) open it read-only for one statement. Rows go in through
Arrow tables, one transaction per (video, stream, analysis): an analysis is complete or absent.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pyarrow as pa

from laughtrack import faults
from laughtrack.errors import LaughtrackError

LOCK_WAIT_S = 120.0   # how long a writer waits for another process to release the file
DONE = "done"

# Forward-only migrations: (version, statements). Applied in order inside one transaction each.
MIGRATIONS: list[tuple[int, str]] = [(1, """
CREATE TABLE videos (
    video_id VARCHAR PRIMARY KEY, path VARCHAR, sha256 VARCHAR UNIQUE, size_bytes BIGINT,
    container VARCHAR, duration_s DOUBLE, first_seen_at TIMESTAMPTZ);
CREATE TABLE video_paths (video_id VARCHAR, path VARCHAR, seen_at TIMESTAMPTZ, PRIMARY KEY (video_id, path));
CREATE TABLE audio_streams (
    video_id VARCHAR, stream_index INTEGER, codec VARCHAR, channels INTEGER, sample_rate INTEGER,
    duration_s DOUBLE, language_tag VARCHAR, PRIMARY KEY (video_id, stream_index));
CREATE TABLE analyses (
    analysis_id VARCHAR PRIMARY KEY, video_id VARCHAR, stream_index INTEGER, model_id VARCHAR,
    model_sha256 VARCHAR, params_json VARCHAR, code_version VARCHAR, device VARCHAR,
    duration_s DOUBLE, started_at TIMESTAMPTZ, finished_at TIMESTAMPTZ, status VARCHAR);
CREATE TABLE windows (
    analysis_id VARCHAR, start_s DOUBLE, end_s DOUBLE, event VARCHAR, emotion VARCHAR, language VARCHAR,
    p_laughter REAL, p_applause REAL, p_speech REAL, p_bgm REAL, p_cry REAL, p_cough REAL,
    p_sneeze REAL, p_breath REAL, p_no_event REAL, p_happy REAL, p_sad REAL, p_angry REAL,
    p_neutral REAL, p_fearful REAL, p_disgusted REAL, p_surprised REAL, p_emo_unknown REAL,
    p_language REAL, text VARCHAR);
CREATE TABLE segments (
    analysis_id VARCHAR, start_s DOUBLE, end_s DOUBLE, language VARCHAR, emotion VARCHAR, event VARCHAR,
    raw_text VARCHAR, text VARCHAR, tokens_json VARCHAR);
CREATE TABLE tokens (analysis_id VARCHAR, start_s DOUBLE, end_s DOUBLE, piece VARCHAR, text VARCHAR);
CREATE TABLE events (analysis_id VARCHAR, label VARCHAR, start_s DOUBLE, end_s DOUBLE, peak_p REAL, mean_p REAL);
CREATE TABLE minute_density (
    analysis_id VARCHAR, video_id VARCHAR, stream_index INTEGER, minute INTEGER, laughter_s DOUBLE,
    applause_s DOUBLE, laughter_count INTEGER, applause_count INTEGER, speech_s DOUBLE, covered_s DOUBLE);
CREATE TABLE minute_events (analysis_id VARCHAR, minute INTEGER, label VARCHAR, seconds DOUBLE, count INTEGER);
CREATE TABLE failures (
    path VARCHAR, sha256 VARCHAR, stream_index INTEGER, stage VARCHAR, error_type VARCHAR,
    message VARCHAR, "at" TIMESTAMPTZ);
CREATE VIEW latest_analyses AS
    SELECT * FROM analyses WHERE status = 'done'
    QUALIFY row_number() OVER (PARTITION BY video_id, stream_index ORDER BY finished_at DESC, analysis_id) = 1;
CREATE VIEW engagement AS
    WITH m AS (
        SELECT analysis_id, sum(laughter_s) AS laughter_s, sum(applause_s) AS applause_s,
               CAST(sum(laughter_count) AS BIGINT) AS laughs, CAST(sum(applause_count) AS BIGINT) AS applause_bursts,
               sum(speech_s) AS speech_s, sum(covered_s) AS covered_s
        FROM minute_density GROUP BY analysis_id)
    SELECT a.video_id, v.path, a.stream_index, a.analysis_id, a.model_id, a.duration_s,
           m.laughter_s, m.applause_s, m.laughs, m.applause_bursts, m.speech_s,
           m.laughs / nullif(a.duration_s / 60, 0) AS laughs_per_min,
           m.applause_bursts / nullif(a.duration_s / 60, 0) AS applause_per_min,
           100 * (m.laughter_s + m.applause_s) / nullif(m.covered_s, 0) AS engagement_score,
           m.covered_s / nullif(a.duration_s, 0) AS coverage
    FROM latest_analyses a JOIN videos v USING (video_id) JOIN m USING (analysis_id);
CREATE VIEW top_moments AS
    SELECT a.video_id, a.stream_index, e.analysis_id, e.label, e.start_s, e.end_s,
           e.end_s - e.start_s AS seconds, e.peak_p, e.mean_p,
           row_number() OVER (PARTITION BY e.analysis_id ORDER BY (e.end_s - e.start_s) * e.mean_p DESC,
                              e.start_s) AS rank
    FROM events e JOIN latest_analyses a USING (analysis_id)
    WHERE e.label IN ('Laughter', 'Applause');
CREATE VIEW laugh_context AS
    SELECT a.video_id, a.stream_index, e.analysis_id, e.start_s AS laugh_start_s, e.end_s AS laugh_end_s,
           e.peak_p, trim(coalesce(string_agg(t.text, '' ORDER BY t.start_s), '')) AS said_before
    FROM events e JOIN latest_analyses a USING (analysis_id)
    LEFT JOIN tokens t ON t.analysis_id = e.analysis_id
         AND t.end_s > e.start_s - 10 AND t.start_s < e.start_s
    WHERE e.label = 'Laughter'
    GROUP BY ALL;
""")]
SCHEMA_VERSION = MIGRATIONS[-1][0]


class StoreError(LaughtrackError):
    """The results database cannot be opened or written."""


# One writer at a time inside this process too: two task threads inserting the same video row
# in overlapping transactions would fail with a DuckDB write-write conflict.
_WRITE_LOCK = threading.RLock()


@contextmanager
def writer(db: Path, wait_s: float = LOCK_WAIT_S) -> Iterator[duckdb.DuckDBPyConnection]:
    """A migrated read-write connection, held briefly; waits while another process has the file."""
    with _WRITE_LOCK:
        con = _connect_with_retry(Path(db), wait_s)
        try:
            migrate(con)
            yield con
        finally:
            con.close()


def _connect_with_retry(db: Path, wait_s: float) -> duckdb.DuckDBPyConnection:
    deadline, delay = time.monotonic() + wait_s, 0.05
    db.parent.mkdir(parents=True, exist_ok=True)
    while True:
        try:
            return duckdb.connect(str(db))
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise StoreError(f"cannot open '{db}' for writing: {str(exc).splitlines()[0]}") from None
            time.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(delay * 2, 2.0)


def migrate(con: duckdb.DuckDBPyConnection) -> int:
    """Bring the schema up to SCHEMA_VERSION; return the version found before."""
    con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER, applied_at TIMESTAMPTZ)")
    found = con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchall()[0][0]
    if found > SCHEMA_VERSION:
        raise StoreError(f"database schema v{found} is newer than this laughtrack (v{SCHEMA_VERSION}); upgrade laughtrack")
    for version, sql in MIGRATIONS:
        if version > found:
            con.execute("BEGIN TRANSACTION")
            con.execute(sql)
            con.execute("INSERT INTO schema_version VALUES (?, ?)", [version, _now()])
            con.execute("COMMIT")
    return found


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class AnalysisRows:
    """Everything one (video, stream, analysis) writes, as column dicts or Arrow tables."""

    video: dict            # videos columns
    path: str              # the name this run saw the video under
    stream: dict           # audio_streams columns
    analysis: dict         # analyses columns (status and finished_at are set on write)
    windows: pa.Table
    segments: pa.Table
    tokens: pa.Table
    events: pa.Table
    minute_density: pa.Table
    minute_events: pa.Table


def done_analyses(db: Path, analysis_ids: list[str]) -> set[str]:
    """Which of these analyses are already complete in the database."""
    if not analysis_ids or not Path(db).exists():
        return set()
    with writer(db) as con:
        rows = con.execute("SELECT analysis_id FROM analyses WHERE status = ? AND analysis_id IN "
                           "(SELECT unnest(?))", [DONE, analysis_ids]).fetchall()
    return {r[0] for r in rows}


def note_path(db: Path, video: dict, path: str) -> None:
    """Record that a known video was seen under `path` (a renamed copy) without new analysis."""
    with writer(db) as con:
        con.execute("BEGIN TRANSACTION")
        _upsert_video(con, video, path)
        con.execute("COMMIT")


def write_analysis(db: Path, rows: AnalysisRows) -> bool:
    """Write one analysis in one transaction; False (and no change) when it is already there."""
    with writer(db) as con:
        con.execute("BEGIN TRANSACTION")
        try:
            exists = con.execute("SELECT count(*) FROM analyses WHERE analysis_id = ?",
                                 [rows.analysis["analysis_id"]]).fetchall()[0][0]
            _upsert_video(con, rows.video, rows.path)
            if exists:
                con.execute("COMMIT")
                return False
            con.execute("INSERT OR IGNORE INTO audio_streams BY NAME SELECT * FROM (SELECT ?::VARCHAR AS video_id, "
                        "?::INTEGER AS stream_index, ?::VARCHAR AS codec, ?::INTEGER AS channels, "
                        "?::INTEGER AS sample_rate, ?::DOUBLE AS duration_s, ?::VARCHAR AS language_tag)",
                        [rows.stream[k] for k in ("video_id", "stream_index", "codec", "channels",
                                                  "sample_rate", "duration_s", "language_tag")])
            analysis = dict(rows.analysis, status=DONE, finished_at=_now())
            con.execute(f"INSERT INTO analyses ({', '.join(analysis)}) VALUES ({', '.join('?' * len(analysis))})",
                        list(analysis.values()))
            for table in ("windows", "segments", "tokens", "events", "minute_density", "minute_events"):
                con.register("_rows", getattr(rows, table))
                con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _rows")
                con.unregister("_rows")
                faults.point(f"store:{table}")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return True


def _upsert_video(con: duckdb.DuckDBPyConnection, video: dict, path: str) -> None:
    con.execute("INSERT OR IGNORE INTO videos VALUES (?, ?, ?, ?, ?, ?, ?)",
                [video["video_id"], path, video["sha256"], video["size_bytes"], video["container"],
                 video["duration_s"], _now()])
    con.execute("INSERT OR IGNORE INTO video_paths VALUES (?, ?, ?)", [video["video_id"], path, _now()])


def record_failures(db: Path, failures: list[dict]) -> None:
    """Append failure rows (path, sha256, stream_index, stage, error_type, message)."""
    if not failures:
        return
    at = _now()
    table = pa.Table.from_pylist([dict(f, at=at) for f in failures], schema=pa.schema([
        ("path", pa.string()), ("sha256", pa.string()), ("stream_index", pa.int32()), ("stage", pa.string()),
        ("error_type", pa.string()), ("message", pa.string()), ("at", pa.timestamp("us", tz="UTC"))]))
    with writer(db) as con:
        con.register("_rows", table)
        con.execute("INSERT INTO failures BY NAME SELECT * FROM _rows")


def minute_table(db: Path, analysis_ids: list[str]) -> list[dict]:
    """minute_density rows of these analyses, ordered."""
    with writer(db) as con:
        cur = con.execute("SELECT * FROM minute_density WHERE analysis_id IN (SELECT unnest(?)) "
                          "ORDER BY analysis_id, minute", [analysis_ids])
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]


# --- Read-only queries -------------------------------------------------------------------------

def query(db: Path, sql: str, params: list | None = None) -> tuple[list[str], list[tuple]]:
    """Run one read-only statement with external access disabled; (column names, rows)."""
    with reader(db) as con:
        try:
            cur = con.execute(sql, params or [])
            names = [d[0] for d in cur.description] if cur.description else []
            return names, cur.fetchall()
        except duckdb.Error as exc:
            message = str(exc).splitlines()[0]
            if "read-only" in message.lower():
                message = f"the results database is read-only here; queries cannot change it ({message})"
            raise StoreError(message) from None


# --- Report data (every number a report shows comes from one of these statements) -------------

def _dicts(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[dict]:
    cur = con.execute(sql, params or [])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


@contextmanager
def reader(db: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection with external access off, retried while a writer holds the file."""
    db = Path(db)
    if not db.exists():
        raise StoreError(f"no results database at '{db}'; run `laughtrack analyze` first or pass --db")
    deadline, delay = time.monotonic() + LOCK_WAIT_S, 0.05
    while True:
        try:
            con = duckdb.connect(str(db), read_only=True,
                                 config={"enable_external_access": False, "autoload_known_extensions": False,
                                         "autoinstall_known_extensions": False, "lock_configuration": True})
            break
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise StoreError(f"cannot open '{db}': {str(exc).splitlines()[0]}") from None
            time.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(delay * 2, 1.0)
    try:
        yield con
    finally:
        con.close()


def report_targets(db: Path, video_ids: list[str] | None = None) -> list[dict]:
    """Latest analyses (one per video stream) to report on: all, or those of `video_ids`."""
    with reader(db) as con:
        rows = _dicts(con, "SELECT video_id, stream_index, analysis_id FROM engagement ORDER BY video_id, stream_index")
    if video_ids is not None:
        known = {r["video_id"] for r in rows}
        missing = [v for v in video_ids if v not in known]
        if missing:
            raise StoreError(f"no analysed video with id {', '.join(missing)}; "
                             "see `laughtrack query \"SELECT video_id, path FROM engagement\"`")
        rows = [r for r in rows if r["video_id"] in video_ids]
    return rows


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


def video_report_data(db: Path, analysis_id: str) -> dict[str, list[dict]]:
    """Everything the per-video report shows, keyed like VIDEO_REPORT_SQL."""
    with reader(db) as con:
        return {key: _dicts(con, sql, [analysis_id]) for key, sql in VIDEO_REPORT_SQL.items()}


COLLECTION_SQL = {
    "leaderboard": "SELECT video_id, stream_index, path, duration_s, laughs_per_min, applause_per_min, "
                   "laughter_s, applause_s, engagement_score, coverage FROM engagement "
                   "ORDER BY engagement_score DESC NULLS LAST, video_id, stream_index",
    "minutes": "SELECT d.laughter_s, d.applause_s FROM minute_density d "
               "JOIN latest_analyses a USING (analysis_id)",
}


def collection_report_data(db: Path) -> dict[str, list[dict]]:
    """The leaderboard and every per-minute row of the latest analyses."""
    with reader(db) as con:
        return {key: _dicts(con, sql) for key, sql in COLLECTION_SQL.items()}


def analysed_shas(db: Path, model_sha256: str, params_json: str, code_version: str) -> set[str]:
    """Content hashes with a complete analysis for this model, parameters and code."""
    if not Path(db).exists():
        return set()
    with reader(db) as con:
        rows = con.execute("SELECT DISTINCT v.sha256 FROM videos v JOIN analyses a USING (video_id) "
                           "WHERE a.status = ? AND a.model_sha256 = ? AND a.params_json = ? AND a.code_version = ?",
                           [DONE, model_sha256, params_json, code_version]).fetchall()
    return {r[0] for r in rows}
