"""Operations against a real local `prefect server start` (SQLite, free port): deployments from
prefect.yaml, a process worker, the upload watcher, schedules and idempotent inbox scans."""

import hashlib
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from procs import BIN, ROOT, free_port, prefect_env, start_server, stop, wait_for

from laughtrack.synthetic import synth
from laughtrack.store import open_store
pytestmark = [pytest.mark.server, pytest.mark.timeout(900)]   # a real server: minutes, not seconds


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """Server + work pool + `prefect deploy --all` + a process worker, with laughtrack settings in
    the worker's environment. Yields (env, paths)."""
    work = tmp_path_factory.mktemp("service")
    port = free_port()
    env = prefect_env(work, port, LAUGHTRACK_DB=str(work / "results.duckdb"), LAUGHTRACK_INBOX=str(work / "inbox"),
                      LAUGHTRACK_MODEL="fixture", LAUGHTRACK_CACHE=str(work / "cache"),
                      LAUGHTRACK_REPORTS=str(work / "reports"))
    (work / "inbox").mkdir()
    logs = {name: open(work / f"{name}.log", "w") for name in ("worker", "deploy")}
    started = time.monotonic()
    procs = [start_server(env, port, work / "server.log")]
    try:
        server_s = time.monotonic() - started
        for cmd in (["work-pool", "create", "laughtrack", "--type", "process"], ["--no-prompt", "deploy", "--all"]):
            done = subprocess.run([BIN / "prefect", *cmd], env=env, cwd=ROOT, stdout=logs["deploy"],
                                  stderr=subprocess.STDOUT, timeout=180)
            assert done.returncode == 0, (work / "deploy.log").read_text()[-3000:]
        worker = subprocess.Popen([BIN / "prefect", "worker", "start", "--pool", "laughtrack", "--type", "process"],
                                  env=env, cwd=ROOT, stdout=logs["worker"], stderr=subprocess.STDOUT,
                                  start_new_session=True)
        procs.append(worker)
        yield env, work, server_s
    finally:
        for proc in reversed(procs):
            stop(proc)
        for f in logs.values():
            f.close()


def client(env):
    from prefect.client.orchestration import SyncPrefectClient
    return SyncPrefectClient(env["PREFECT_API_URL"])


def analyses(env, path: Path) -> int:
    """Analyses of the content of `path` (tests share the module's database: count your own)."""
    db = Path(env["LAUGHTRACK_DB"])
    if not db.exists():
        return 0
    return open_store(db).query("SELECT count(*) FROM analyses a JOIN videos v USING (video_id) WHERE v.sha256 = ?",
                                [hashlib.sha256(path.read_bytes()).hexdigest()])[1][0][0]


def upload_runs(env) -> list:
    """The analyze-upload flow runs so far."""
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName
    with client(env) as c:
        return c.read_flow_runs(deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["analyze-upload"])))


def run_cli(env, *args, timeout=300):
    return subprocess.run([BIN / "prefect", *args], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def render(path: Path, seed: int, duration: float = 40.0) -> Path:
    tl = synth.parse_timeline({"duration_s": duration, "seed": seed, "segments": [
        {"start_s": 0, "end_s": 15, "kind": "speech"}, {"start_s": 15, "end_s": 19, "kind": "laughter"},
        {"start_s": 20, "end_s": 30, "kind": "speech"}, {"start_s": 31, "end_s": 36, "kind": "applause"}]})
    synth.render_to(tl, path)
    return path


def test_deployments_and_schedules_match_prefect_yaml(service):
    env, _, _ = service
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    want = {d["name"]: [s["cron"] for s in d.get("schedules", [])] for d in spec["deployments"]}
    with client(env) as c:
        got = {d.name: [s.schedule.cron for s in d.schedules] for d in c.read_deployments()}
        triggers = [a.trigger.expect for a in c.read_automations()]
    assert got == want == {"analyze-inbox": ["*/10 * * * *"], "analyze-upload": [],
                           "engagement-report": ["0 3 * * *"], "maintain-store": ["30 4 * * *"]}
    assert {"laughtrack.video.uploaded"} in triggers


def test_an_upload_becomes_rows_once_even_when_dropped_again_or_renamed(service, tmp_path, artifacts):
    env, work, _ = service
    inbox = work / "inbox"
    video = render(tmp_path / "talk.mp4", seed=41)
    watcher = subprocess.Popen([BIN / "laughtrack", "watch", str(inbox), "--quiet-s", "1"], env=env, cwd=ROOT,
                               stdout=open(work / "watch.log", "w"), stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        wait_for(lambda: "watching" in (work / "watch.log").read_text(), 60, what="watcher start")
        # an upload arrives under a temporary name, grows, then is renamed when complete
        partial = inbox / "talk.mp4.part"
        data = video.read_bytes()
        partial.write_bytes(data[: len(data) // 2])
        time.sleep(1.5)
        with open(partial, "ab") as f:
            f.write(data[len(data) // 2:])
        partial.rename(inbox / "talk.mp4")
        closed = time.monotonic()
        wait_for(lambda: analyses(env, video) >= 1, 240, what="DuckDB rows for the upload")
        latency = time.monotonic() - closed
        (artifacts / "upload-latency.txt").write_text(f"{latency:.1f} s file closed → rows\n")
        # the same bytes again, and under a new name: the watcher decides, then says so in its log
        shutil.copy(video, inbox / "talk again.mp4")
        shutil.copy(video, inbox / "talk.mp4.tmp")
        wait_for(lambda: "skipped talk again.mp4" in (work / "watch.log").read_text(), 60,
                 what="the watcher to skip the copy")
        log = (work / "watch.log").read_text()
        assert log.count("emitted") == 1 and "talk.mp4.tmp" not in log and "Traceback" not in log
        # one event, so one run: once every upload run has ended, the content has one analysis
        wait_for(lambda: all(r.state and r.state.is_final() for r in upload_runs(env)), 240,
                 what="the upload runs to end")
        assert analyses(env, video) == 1
    finally:
        stop(watcher)


def test_each_deployment_runs_to_completion_and_inbox_scans_never_double(service, tmp_path):
    env, work, _ = service
    inbox = work / "inbox"
    fresh = render(inbox / "scheduled.mp4", seed=42)
    old = time.time() - 60
    os.utime(fresh, (old, old))           # complete for the scan (older than its 10 s settle age)
    with client(env) as c:
        upload_id = next(d.id for d in c.read_deployments() if d.name == "analyze-upload")
    for _ in range(2):                     # two scans back to back: one analysis run
        done = run_cli(env, "deployment", "run", "analyze-inbox/analyze-inbox", "--watch", "--watch-timeout", "240")
        assert done.returncode == 0 and "Completed" in done.stdout, done.stdout + done.stderr
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    with client(env) as c:
        runs = c.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[upload_id])))
    scheduled = [r for r in runs if r.parameters.get("path", "").endswith("scheduled.mp4")]
    assert len(scheduled) == 1
    wait_for(lambda: analyses(env, fresh) == 1, 240, what="the scheduled upload's analysis")
    direct = run_cli(env, "deployment", "run", "analyze-video/analyze-upload", "--param", f"path={fresh}",
                     "--watch", "--watch-timeout", "240")
    assert direct.returncode == 0 and "Completed" in direct.stdout, direct.stdout + direct.stderr
    assert analyses(env, fresh) == 1   # already analysed: no new rows
    report = run_cli(env, "deployment", "run", "engagement-report/engagement-report", "--watch",
                     "--watch-timeout", "240")
    assert report.returncode == 0 and "Completed" in report.stdout, report.stdout + report.stderr
    assert (Path(env["LAUGHTRACK_REPORTS"]) / "index.html").exists()


def test_serve_serves_exactly_the_deployments_of_prefect_yaml(tmp_path):
    """`laughtrack serve` builds its deployments from prefect.yaml (their one definition), with the
    configuration as a parameter that the flows accept as it is."""
    from laughtrack.config import RunConfig
    from laughtrack_cli.service import deployment_specs, to_deployment
    config = RunConfig(db=str(tmp_path / "r.duckdb"), model="fixture", inbox=str(tmp_path)).absolute()
    specs = deployment_specs()
    for spec in specs:
        built = to_deployment(spec, config)
        assert built.name == spec["name"]
        assert [s.schedule.cron for s in built.schedules] == [s["cron"] for s in spec.get("schedules", [])]
        assert [t.parameters for t in built.triggers] == [t["parameters"] for t in spec.get("triggers", [])]
        from prefect.flows import load_flow_from_entrypoint
        flow = load_flow_from_entrypoint(str(ROOT / spec["entrypoint"]))
        given = {**built.parameters, **{name: "x.mp4" for name in flow.parameters.required if name != "config"}}
        assert flow.validate_parameters(given)["config"] == config
    assert to_deployment(specs[0], config, cron="*/5 * * * *").schedules[0].schedule.cron == "*/5 * * * *"
