"""Crash safety and concurrency with real processes: `kill -9` inside the model step and inside
the store transaction, then a re-run; three writers and a reader on one DuckDB file."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from laughtrack.synthetic import synth
from laughtrack.store import open_store

BIN = Path(sys.executable).parent
TIMESTAMPS = {"first_seen_at", "seen_at", "started_at", "finished_at", "at", "applied_at"}


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    d = tmp_path_factory.mktemp("crash-media")
    out = []
    for i in range(3):
        tl = synth.parse_timeline({"duration_s": 30.0, "seed": 70 + i, "segments": [
            {"start_s": 0, "end_s": 12, "kind": "speech"}, {"start_s": 12, "end_s": 16, "kind": "laughter"},
            {"start_s": 17, "end_s": 24, "kind": "speech"}, {"start_s": 25, "end_s": 29, "kind": "applause"}]})
        synth.render_to(tl, d / f"talk{i}.mp4")
        out.append(d / f"talk{i}.mp4")
    return out


@pytest.fixture
def env(prefect_server, tmp_path):
    """Environment for `laughtrack` subprocesses: the session's Prefect server, private caches."""
    from prefect.settings import PREFECT_API_URL
    return dict(os.environ, PREFECT_API_URL=PREFECT_API_URL.value(), PREFECT_HOME=str(prefect_server),
                PREFECT_LOCAL_STORAGE_PATH=str(tmp_path / "storage"), LAUGHTRACK_CACHE=str(tmp_path / "cache"),
                LAUGHTRACK_MODEL="fixture", PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1")


def analyze(env, db, paths, **extra) -> subprocess.Popen:
    return subprocess.Popen([BIN / "laughtrack", "analyze", *map(str, paths), "--db", str(db), "--device", "cpu"],
                            env=dict(env, **extra), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def dump(db: Path) -> dict:
    """Every table's rows without wall-clock columns, sorted: equal dumps = identical results."""
    store = open_store(db)
    tables = [r[0] for r in store.query("SELECT table_name FROM information_schema.tables "
                                        "WHERE table_schema = 'main' AND table_type = 'BASE TABLE'")[1]]
    out = {}
    for t in tables:
        names, rows = store.query(f"SELECT * FROM {t}")
        keep = [i for i, n in enumerate(names) if n not in TIMESTAMPS]
        out[t] = sorted(tuple(str(r[i]) for i in keep) for r in rows)
    return out


@pytest.fixture
def reference(env, videos, tmp_path):
    db = tmp_path / "reference.duckdb"   # its own caches: the crashed run must redo the model work
    proc = analyze(env, db, videos[:2], PREFECT_LOCAL_STORAGE_PATH=str(tmp_path / "ref-storage"),
                   LAUGHTRACK_CACHE=str(tmp_path / "ref-cache"))
    assert proc.wait(timeout=600) == 0, proc.stdout.read()
    return dump(db)


@pytest.mark.timeout(900)
@pytest.mark.parametrize("fault", ["scan", "store:events"])
def test_kill_9_then_rerun_leaves_the_database_as_an_uninterrupted_run(env, videos, tmp_path, reference, fault):
    db, marker = tmp_path / "crashed.duckdb", tmp_path / "fault-reached"
    proc = analyze(env, db, videos[:2], LAUGHTRACK_FAULT=fault, LAUGHTRACK_FAULT_FILE=str(marker))
    deadline = time.monotonic() + 300
    while not marker.exists():
        assert proc.poll() is None, proc.stdout.read()
        assert time.monotonic() < deadline, "the fault point was never reached"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    if db.exists():   # what the crash left: nothing half-written
        _, rows = open_store(db).query("SELECT (SELECT count(*) FROM windows) + (SELECT count(*) FROM events) + "
                                       "(SELECT count(*) FROM videos)")
        assert rows[0][0] == 0
    rerun = analyze(env, db, videos[:2])
    assert rerun.wait(timeout=600) == 0, rerun.stdout.read()
    assert dump(db) == reference


@pytest.mark.timeout(900)
def test_three_writers_and_a_reader_share_one_database(env, videos, tmp_path, artifacts):
    db = tmp_path / "shared.duckdb"
    writers = [analyze(env, db, [v]) for v in videos]
    queries, failed = 0, []
    while any(w.poll() is None for w in writers):
        existed = db.exists()   # before the query: a query that started before the file did may say so
        q = subprocess.run([BIN / "laughtrack", "query", "--db", str(db), "--format", "csv",
                            "SELECT count(*) FROM analyses"], env=env, capture_output=True, text=True, timeout=300)
        if existed:
            queries += 1
            if q.returncode != 0:
                failed.append(q.stderr)
        elif q.returncode != 0 and "no results database" not in q.stderr:
            failed.append(q.stderr)
    outputs = [w.stdout.read() for w in writers]
    assert [w.returncode for w in writers] == [0, 0, 0], outputs
    assert failed == [] and queries > 0
    store = open_store(db)
    _, rows = store.query("SELECT count(*), count(DISTINCT video_id) FROM analyses")
    assert rows == [(3, 3)]
    _, dupes = store.query("SELECT count(*) - count(DISTINCT (analysis_id, start_s)) FROM windows")
    assert dupes == [(0,)]
    (artifacts / "concurrency.txt").write_text(
        f"3 writers, {queries} reader queries while the file existed, 0 failed; analyses 3/3, duplicate windows 0\n")
