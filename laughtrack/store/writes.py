"""Every write: one transaction per analysis, the other names of a video, failures, event sets.

Exactly once, on any number of writers: every write transaction about a video first updates the
row of that video's write lock (schema.lock_table), then checks what is already there, then
inserts only what is new. Two writers of one video both update that row, so one of them fails to
commit (a DuckLake conflict; a DuckDB file admits one writing process at a time anyway) and
retries from the start, when it sees the winner's rows. Without that step two writers could both
find an analysis absent and both commit it: DuckLake has no UNIQUE constraint. Writers of
different videos take different locks (mostly: 16 of them), so they seldom retry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime

import duckdb
import pyarrow as pa

from laughtrack import faults
from laughtrack.records import Failure, Video
from laughtrack.store import schema
from laughtrack.store.migrations import now
from laughtrack.store.rows import AnalysisRows, failure_table, path_row

SERIALIZE_SQL = "UPDATE {lock} SET writes = writes + 1"
# A failure stands until its file (or that stream of it) is analysed; then it is closed, not deleted.
OPEN_FAILURES = ("resolved_at IS NULL AND ((sha256 = ? AND (stream_index IS NULL OR stream_index = ?)) "
                 "OR (sha256 IS NULL AND path = ?))")


class Writes:
    """The write methods of a store (sql.py's SqlStore provides `_write` and `_write_each`)."""

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


def transaction(con: duckdb.DuckDBPyConnection, work: Callable[[duckdb.DuckDBPyConnection], object],
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
