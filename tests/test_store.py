"""The DuckDB file: migrations, one transaction per analysis, views, and read-only queries."""

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from laughtrack import analysis, density, store
from laughtrack.events import Event
from sensevoice_core import ScanResult
from sensevoice_core.tags import EMOTIONS, EVENTS, LANGUAGES


def fake_scan(n=8):
    names = {"event": EVENTS, "emotion": EMOTIONS, "language": LANGUAGES}
    probs = {f: np.full((n, len(v)), 1 / len(v), np.float32) for f, v in names.items()}
    start = np.arange(n) * 0.25
    return ScanResult(start_s=start, end_s=start + 0.5, probs=probs, names=names, text=[""] * n)


def rows(aid="a1", sha="ab" * 32, duration_ms=90_000, windows=None):
    evs = [Event("Laughter", 58_000, 63_000, 0.9, 0.8), Event("Speech", 0, 50_000, 1.0, 1.0)]
    vid = analysis.video_id(sha)
    wide, long = density.minute_density(evs, duration_ms), density.minute_labels(evs, duration_ms)
    return store.AnalysisRows(
        video={"video_id": vid, "sha256": sha, "size_bytes": 10, "container": "mp4", "duration_s": 90.0},
        path="talk.mp4",
        stream={"video_id": vid, "stream_index": 0, "codec": "aac", "channels": 1, "sample_rate": 16000,
                "duration_s": 90.0, "language_tag": None},
        analysis={"analysis_id": aid, "video_id": vid, "stream_index": 0, "model_id": "fixture",
                  "model_sha256": "m", "params_json": "{}", "code_version": "t", "device": "cpu",
                  "duration_s": duration_ms / 1000, "started_at": None},
        windows=windows if windows is not None else analysis.window_table(aid, fake_scan()),
        segments=analysis.segment_table(aid, []), tokens=analysis.token_table(aid, []),
        events=analysis.event_table(aid, evs),
        minute_density=analysis.rows_table(wide, analysis.MINUTE_DENSITY_SCHEMA, analysis_id=aid,
                                           video_id=vid, stream_index=0),
        minute_events=analysis.rows_table(long, analysis.MINUTE_EVENTS_SCHEMA, analysis_id=aid))


def count(db, table):
    return store.query(db, f"SELECT count(*) FROM {table}")[1][0][0]


def test_migrations_are_idempotent_and_a_newer_schema_is_refused(tmp_path):
    db = tmp_path / "r.duckdb"
    with store.writer(db) as con:
        assert store.migrate(con) == store.SCHEMA_VERSION
        con.execute("INSERT INTO schema_version VALUES (?, now())", [store.SCHEMA_VERSION + 1])
    with pytest.raises(store.StoreError, match="newer"):
        with store.writer(db):
            pass


def test_an_analysis_is_written_once_with_its_lineage(tmp_path):
    db = tmp_path / "r.duckdb"
    assert store.write_analysis(db, rows()) is True
    assert store.write_analysis(db, rows()) is False
    assert [count(db, t) for t in ("videos", "analyses", "windows", "events", "minute_density")] == [1, 1, 8, 2, 2]
    names, got = store.query(db, "SELECT model_id, status, finished_at IS NOT NULL FROM analyses")
    assert got == [("fixture", "done", True)]


def test_a_failing_write_leaves_nothing_behind(tmp_path):
    db = tmp_path / "r.duckdb"
    broken = pa.table({"analysis_id": ["a1"], "no_such_column": [1.0]})
    with pytest.raises(duckdb.Error):
        store.write_analysis(db, rows(windows=broken))
    assert [count(db, t) for t in ("videos", "analyses", "events", "minute_density")] == [0, 0, 0, 0]


def test_views_give_engagement_top_moments_and_context(tmp_path):
    db = tmp_path / "r.duckdb"
    store.write_analysis(db, rows())
    names, got = store.query(db, "SELECT laughter_s, laughs, round(laughs_per_min, 3), "
                                 "round(engagement_score, 3), coverage FROM engagement")
    assert got == [(5.0, 1, round(1 / 1.5, 3), round(100 * 5 / 90, 3), 1.0)]
    assert store.query(db, "SELECT label, start_s, rank FROM top_moments")[1] == [("Laughter", 58.0, 1)]
    assert store.query(db, "SELECT laugh_start_s FROM laugh_context")[1] == [(58.0,)]


def test_a_new_parameter_set_keeps_the_old_analysis_and_the_latest_wins(tmp_path):
    db = tmp_path / "r.duckdb"
    store.write_analysis(db, rows("old"))
    store.write_analysis(db, rows("new"))
    assert count(db, "analyses") == 2 and count(db, "videos") == 1
    assert store.query(db, "SELECT analysis_id FROM engagement")[1] == [("new",)]


@pytest.mark.parametrize("sql, message", [
    ("DELETE FROM videos", "read-only"),
    ("CREATE TABLE x (a INT)", "read-only"),
    ("COPY videos TO '{tmp}/out.csv'", "disabled"),
    ("SELECT * FROM read_csv('/etc/passwd')", "disabled"),
    ("SELECT * FROM read_text('/etc/hostname')", "disabled"),
    ("ATTACH '{tmp}/other.duckdb' AS o", "disabled|read-only"),
    ("INSTALL httpfs", "disabled|read-only|not"),
    ("SET enable_external_access = true", "configuration|locked|read-only|Cannot change"),
])
def test_queries_cannot_write_or_escape(tmp_path, sql, message):
    db = tmp_path / "r.duckdb"
    store.write_analysis(db, rows())
    with pytest.raises(store.StoreError, match=message):
        store.query(db, sql.format(tmp=tmp_path))
    assert not (tmp_path / "out.csv").exists() and not (tmp_path / "other.duckdb").exists()
    assert count(db, "videos") == 1


def test_query_on_a_missing_database_says_how_to_make_one(tmp_path):
    with pytest.raises(store.StoreError, match="laughtrack analyze"):
        store.query(tmp_path / "none.duckdb", "SELECT 1")
