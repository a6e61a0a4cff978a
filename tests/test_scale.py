"""Scale-out on one machine: a real PostgreSQL catalog and a DuckLake, a real `prefect server`,
three workers as separate processes with their own HOME, Prefect home, cache and host name
standing in for machines — killed with kill -9 mid-run — and plain `laughtrack analyze`
processes racing on the same files. Every upload ends up analysed exactly once, with the numbers
a single-process run gives, and a reader querying all along never fails or sees half of one."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from pgtmp import temporary_postgres
from procs import BIN, ROOT, free_port, prefect_env, run, start_server, stop, wait_for

from laughtrack.synthetic import synth
from laughtrack.config import RunConfig
from laughtrack.store import StoreConfig, open_store

pytestmark = [pytest.mark.scale, pytest.mark.timeout(1500)]
VIDEOS = 9
# The commands of the README's "Scale out" section, as this test runs them (a test below checks
# that the README shows each of them).
README_COMMANDS = [
    "laughtrack db migrate",
    "prefect work-pool create laughtrack --type process",
    "prefect --no-prompt deploy --all",
    "prefect automation create --from-file automations.yaml",
    "prefect worker start --pool laughtrack --type process --limit 1",
    "prefect deployment run analyze-inbox/analyze-inbox",
    "laughtrack db maintain",
    "laughtrack query",
]


def timeline(i: int) -> dict:
    """About 20 s of talk with a laugh and a round of applause, different for every video."""
    laugh = 6.0 + (i % 3)
    return {"duration_s": 20.0 + i % 4, "seed": 300 + i, "segments": [
        {"start_s": 0, "end_s": laugh, "kind": "speech"}, {"start_s": laugh, "end_s": laugh + 2.5, "kind": "laughter"},
        {"start_s": laugh + 3, "end_s": 15, "kind": "speech"}, {"start_s": 15.5, "end_s": 18.5, "kind": "applause"}]}


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> list[Path]:
    out = tmp_path_factory.mktemp("scale-media")
    paths = []
    for i in range(VIDEOS):
        path = out / f"talk {i}.mp4"
        synth.render_to(synth.parse_timeline(timeline(i)), path)
        old = time.time() - 120            # complete uploads, older than the reconciler's settle age
        os.utime(path, (old, old))
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def reference(media, tmp_path_factory, cache_dir, prefect_server) -> list[tuple]:
    """The same files through one process into a DuckDB file: what every layout must reproduce."""
    from flows.analyze import analyze_batch
    db = tmp_path_factory.mktemp("scale-reference") / "r.duckdb"
    result = analyze_batch(paths=[str(p) for p in media], config=RunConfig(db=str(db), model="fixture", device="cpu",
                                                                        cache_dir=str(cache_dir)))
    assert not result.failures and len(result.analysed) == VIDEOS
    return minutes(open_store(db))


def minutes(store) -> list[tuple]:
    return store.query("SELECT analysis_id, minute, laughter_s, applause_s, laughter_count, applause_count, speech_s, "
                       "covered_s FROM minute_density ORDER BY analysis_id, minute")[1]


def lake_env(work: Path, conninfo: str, **extra) -> dict[str, str]:
    return dict(LAUGHTRACK_DB=f"ducklake:postgres:{conninfo}", LAUGHTRACK_LAKE_DATA=str(work / "lake"),
                LAUGHTRACK_MODEL="fixture", LAUGHTRACK_DEVICE="cpu", **extra)


def machine(work: Path, name: str, base: dict, **extra) -> dict[str, str]:
    """A worker's environment standing in for a machine of its own."""
    home = work / name
    (home / "home").mkdir(parents=True, exist_ok=True)
    return dict(base, HOME=str(home / "home"), PREFECT_HOME=str(home / "prefect"), LAUGHTRACK_HOST=name,
                LAUGHTRACK_CACHE=str(home / "cache"), PREFECT_LOCAL_STORAGE_PATH=str(home / "storage"), **extra)


class Reader(threading.Thread):
    """`laughtrack query` over and over while the cluster works: no failure, never half an analysis."""

    SQL = ("SELECT count(*), count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM windows w WHERE w.analysis_id = "
           "a.analysis_id) OR NOT EXISTS (SELECT 1 FROM minute_density d WHERE d.analysis_id = a.analysis_id)) "
           "FROM analyses a")

    def __init__(self, env: dict):
        super().__init__(daemon=True)
        self.env, self.halt = env, threading.Event()
        self.counts: list[int] = []
        self.problems: list[str] = []

    def run(self) -> None:
        while not self.halt.is_set():
            q = run(self.env, "laughtrack", "query", "--format", "csv", self.SQL, timeout=300)
            if q.returncode != 0:
                self.problems.append(q.stderr.strip())
            else:
                total, partial = map(int, q.stdout.splitlines()[1].split(","))
                self.counts.append(total)
                if partial:
                    self.problems.append(f"{partial} half-written analyses seen")
            self.halt.wait(0.5)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, media):
    """PostgreSQL + DuckLake, a Prefect server with laughtrack's deployments and automations, and an
    inbox holding the videos. Yields (work dir, base env, conninfo); workers are each test's own."""
    work = tmp_path_factory.mktemp("cluster")
    (work / "inbox").mkdir()
    for p in media:
        (work / "inbox" / p.name).write_bytes(p.read_bytes())
        os.utime(work / "inbox" / p.name, (p.stat().st_mtime,) * 2)
    with temporary_postgres() as conninfo:
        port = free_port()
        base = prefect_env(work, port, **lake_env(work, conninfo, LAUGHTRACK_INBOX=str(work / "inbox")),
                           PREFECT_FLOWS_HEARTBEAT_FREQUENCY="30")
        server = start_server(base, port, work / "server.log")
        try:
            for cmd in (["laughtrack", "db", "migrate"], ["prefect", "work-pool", "create", "laughtrack", "--type",
                                                          "process"], ["prefect", "--no-prompt", "deploy", "--all"],
                        ["prefect", "automation", "create", "--from-file", "automations.yaml"]):
                done = run(base, *cmd)
                assert done.returncode == 0, (cmd, done.stdout[-2000:], done.stderr[-2000:])
            yield work, base, conninfo
        finally:
            stop(server)


def start_worker(env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen([BIN / "prefect", "worker", "start", "--pool", "laughtrack", "--type", "process",
                             "--limit", "1"], env=env, cwd=ROOT, stdout=open(log, "a"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def kill_machine(worker: subprocess.Popen, marker: Path) -> None:
    """kill -9 of the worker and of the flow run it started (as a machine dies)."""
    blocked = int(marker.read_text().split()[1])
    for kill in (lambda: os.killpg(worker.pid, signal.SIGKILL), lambda: os.kill(blocked, signal.SIGKILL)):
        try:
            kill()
        except ProcessLookupError:
            pass
    worker.wait(timeout=30)


def upload_runs(env: dict) -> list:
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName
    with SyncPrefectClient(env["PREFECT_API_URL"]) as client:
        return client.read_flow_runs(deployment_filter=DeploymentFilter(name=DeploymentFilterName(
            any_=["analyze-upload"])))


def reconcile(env: dict) -> None:
    done = run(env, "prefect", "deployment", "run", "analyze-inbox/analyze-inbox", "--watch", "--watch-timeout", "300",
               timeout=400)
    assert done.returncode == 0 and "Completed" in done.stdout, done.stdout[-2000:] + done.stderr[-2000:]


def test_three_workers_two_killed_mid_run_every_upload_once(cluster, reference, artifacts):
    work, base, conninfo = cluster
    store = open_store(StoreConfig(base["LAUGHTRACK_DB"], base["LAUGHTRACK_LAKE_DATA"], str(work / "reader-cache")))
    markers = {name: work / f"{name}.fault" for name in ("m1", "m2")}
    faults = {"m1": "scan", "m2": "store:events", "m3": ""}   # m1 dies in the model step, m2 in the commit
    envs = {name: machine(work, name, base, LAUGHTRACK_FAULT=fault,
                          LAUGHTRACK_FAULT_FILE=str(markers.get(name, work / "none"))) for name, fault in faults.items()}
    reader = Reader(machine(work, "reader", base))
    key = RunConfig(model="fixture", device="cpu", cache_dir=str(work / "key-cache")).engine() \
        .config_key(RunConfig().params).id
    workers = {name: start_worker(env, work / f"{name}.log") for name, env in envs.items()}
    t0 = time.monotonic()
    try:
        reader.start()
        reconcile(base)
        wait_for(lambda: all(m.exists() for m in markers.values()), 600, what="both faults to be reached")
        for name in markers:                       # two machines die, then come back healthy
            kill_machine(workers[name], markers[name])
            workers[name] = start_worker(machine(work, name, base), work / f"{name}.log")
        wait_for(lambda: sum(r.state.is_crashed() for r in upload_runs(base) if r.state) >= 2, 400, step=5,
                 what="the zombie automation to mark the killed runs Crashed")
        reconcile(base)                            # the reconciler starts them again (attempt 1)
        wait_for(lambda: len(store.done_contents(key)) == VIDEOS, 600, step=2, what="every upload analysed")
        wall = time.monotonic() - t0
        reconcile(base)                            # nothing left to do: no new run
        runs = upload_runs(base)
    finally:
        reader.halt.set()
        for w in workers.values():
            stop(w)
        reader.join(timeout=300)
    _, rows = store.query("SELECT count(*), count(DISTINCT analysis_id), count(DISTINCT video_id) FROM analyses")
    assert rows == [(VIDEOS, VIDEOS, VIDEOS)]
    assert minutes(store) == reference
    assert sum(r.state.is_completed() for r in runs) == VIDEOS and len(runs) == VIDEOS + 2
    assert reader.problems == [] and len(reader.counts) >= 5 and reader.counts == sorted(reader.counts)
    first = run(base, "laughtrack", "db", "maintain", "--orphan-age-s", "0")
    again = run(base, "laughtrack", "db", "maintain", "--orphan-age-s", "0")
    assert first.returncode == 0 and again.returncode == 0, first.stderr + again.stderr
    assert "orphans deleted 0" not in first.stdout and "orphans deleted 0" in again.stdout, (first.stdout, again.stdout)
    assert minutes(store) == reference
    took = sorted((r.end_time - r.start_time).total_seconds() for r in runs if r.state.is_completed())
    (artifacts / "scale-workers.txt").write_text(
        f"{VIDEOS} uploads, 3 workers (m1 killed in the model step, m2 in the commit), {len(runs)} upload runs "
        f"({VIDEOS} completed, 2 crashed and retried): {VIDEOS} analyses, 0 duplicates, per-minute values equal "
        f"to one process; {wall:.0f} s wall (with ~90 s of zombie detection); one upload run (a fresh process: "
        f"imports, model load, a 20-23 s video) took {took[len(took) // 2]:.1f} s median, {took[0]:.1f}-{took[-1]:.1f} "
        f"s; reader: {len(reader.counts)} queries, 0 failed; maintenance: {' '.join(first.stdout.split())}\n")


def test_three_analyze_processes_on_the_same_files_store_each_once(media, tmp_path, reference):
    """No Prefect server shared, no worker: three `laughtrack analyze` on overlapping lists."""
    with temporary_postgres() as conninfo:
        base = dict(os.environ, **lake_env(tmp_path, conninfo), PREFECT_SERVER_ANALYTICS_ENABLED="false",
                    DO_NOT_TRACK="1")
        base.pop("PREFECT_API_URL", None)
        assert run(base, "laughtrack", "db", "migrate").returncode == 0
        files = [str(p) for p in media[:6]]
        procs = [subprocess.Popen([BIN / "laughtrack", "analyze", *(files[k:] + files[:k])],
                                  env=machine(tmp_path, f"p{k}", base), cwd=tmp_path, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, start_new_session=True) for k in (0, 2, 4)]
        outputs = [p.communicate(timeout=900)[0] for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0], outputs
        store = open_store(StoreConfig(base["LAUGHTRACK_DB"], base["LAUGHTRACK_LAKE_DATA"], str(tmp_path / "c")))
        _, rows = store.query("SELECT count(*), count(DISTINCT analysis_id) FROM analyses")
        assert rows == [(6, 6)]
        _, dupes = store.query("SELECT count(*) - count(DISTINCT (analysis_id, start_s, end_s)) FROM windows")
        assert dupes == [(0,)]
        wanted = {r[0] for r in store.query("SELECT analysis_id FROM analyses")[1]}
        assert minutes(store) == [r for r in reference if r[0] in wanted]


def test_the_readme_shows_the_commands_these_tests_run():
    section = (ROOT / "README.md").read_text().split("## Scale out", 1)[1].split("\n## ", 1)[0]
    assert [c for c in README_COMMANDS if c not in section] == []
