"""Operations against a real local `prefect server start` (SQLite, free port): deployments from
prefect.yaml, a process worker, the upload watcher, schedules and idempotent inbox scans."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from laughtrack import store, synth
from laughtrack.cli import render_media

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check, timeout: float, step: float = 0.5, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def stop(proc: subprocess.Popen, signals=(signal.SIGINT, signal.SIGTERM, signal.SIGKILL)) -> None:
    """Stop a process group politely, then firmly (a worker needs two signals)."""
    for sig in signals:
        if proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """Server + work pool + `prefect deploy --all` + a process worker, with laughtrack settings in
    the worker's environment. Yields (env, paths)."""
    work = tmp_path_factory.mktemp("service")
    port = free_port()
    env = dict(os.environ, PREFECT_HOME=str(work / "prefect"), PREFECT_API_URL=f"http://127.0.0.1:{port}/api",
               PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1", PWD=str(ROOT),
               PREFECT_WORKER_QUERY_SECONDS="1", PREFECT_LOCAL_STORAGE_PATH=str(work / "storage"),
               LAUGHTRACK_DB=str(work / "results.duckdb"), LAUGHTRACK_INBOX=str(work / "inbox"),
               LAUGHTRACK_MODEL="fixture", LAUGHTRACK_CACHE=str(work / "cache"),
               LAUGHTRACK_REPORTS=str(work / "reports"), PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL="INFO")
    (work / "inbox").mkdir()
    logs = {name: open(work / f"{name}.log", "w") for name in ("server", "worker", "deploy")}
    started = time.monotonic()
    server = subprocess.Popen([BIN / "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                              env=env, cwd=work, stdout=logs["server"], stderr=subprocess.STDOUT,
                              start_new_session=True)
    procs = [server]
    try:
        import urllib.request

        def healthy():
            try:
                return urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2).status == 200
            except OSError:
                return False
        wait_for(healthy, 120, what="prefect server")
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


def analyses(env) -> int:
    db = Path(env["LAUGHTRACK_DB"])
    return store.query(db, "SELECT count(*) FROM analyses")[1][0][0] if db.exists() else 0


def run_cli(env, *args, timeout=300):
    return subprocess.run([BIN / "prefect", *args], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def render(path: Path, seed: int, duration: float = 40.0) -> Path:
    tl = synth.parse_timeline({"duration_s": duration, "seed": seed, "segments": [
        {"start_s": 0, "end_s": 15, "kind": "speech"}, {"start_s": 15, "end_s": 19, "kind": "laughter"},
        {"start_s": 20, "end_s": 30, "kind": "speech"}, {"start_s": 31, "end_s": 36, "kind": "applause"}]})
    render_media(tl, path)
    return path


def test_deployments_and_schedules_match_prefect_yaml(service):
    env, _, _ = service
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    want = {d["name"]: [s["cron"] for s in d.get("schedules", [])] for d in spec["deployments"]}
    with client(env) as c:
        got = {d.name: [s.schedule.cron for s in d.schedules] for d in c.read_deployments()}
        triggers = [a.trigger.expect for a in c.read_automations()]
    assert got == want == {"analyze-inbox": ["*/10 * * * *"], "analyze-upload": [],
                           "engagement-report": ["0 3 * * *"]}
    assert {"laughtrack.video.uploaded"} in triggers


def test_an_upload_becomes_rows_once_even_when_dropped_again_or_renamed(service, tmp_path):
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
        wait_for(lambda: analyses(env) >= 1, 240, what="DuckDB rows for the upload")
        latency = time.monotonic() - closed
        (ROOT / "test-artifacts").mkdir(exist_ok=True)
        (ROOT / "test-artifacts" / "upload-latency.txt").write_text(f"{latency:.1f} s file closed → rows\n")
        # the same bytes again, and under a new name
        shutil.copy(video, inbox / "talk again.mp4")
        shutil.copy(video, inbox / "talk.mp4.tmp")
        wait_for(lambda: "skipped talk again.mp4" in (work / "watch.log").read_text(), 60,
                 what="the watcher to skip the copy")
        time.sleep(3)
        assert analyses(env) == 1
        log = (work / "watch.log").read_text()
        assert log.count("emitted") == 1 and "talk.mp4.tmp" not in log and "Traceback" not in log
    finally:
        stop(watcher)


def test_each_deployment_runs_to_completion_and_inbox_scans_never_double(service, tmp_path):
    env, work, _ = service
    inbox = work / "inbox"
    before = analyses(env)
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
    wait_for(lambda: analyses(env) == before + 1, 240, what="the scheduled upload's analysis")
    direct = run_cli(env, "deployment", "run", "analyze-video/analyze-upload", "--param", f"path={fresh}",
                     "--watch", "--watch-timeout", "240")
    assert direct.returncode == 0 and "Completed" in direct.stdout, direct.stdout + direct.stderr
    assert analyses(env) == before + 1   # already analysed: no new rows
    report = run_cli(env, "deployment", "run", "engagement-report/engagement-report", "--watch",
                     "--watch-timeout", "240")
    assert report.returncode == 0 and "Completed" in report.stdout, report.stdout + report.stderr
    assert (Path(env["LAUGHTRACK_REPORTS"]) / "index.html").exists()
