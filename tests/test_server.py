"""The Prefect server the CLI reports to: PREFECT_API_URL, else a local one found running, else a
temporary one; `laughtrack server start|stop|status` keep one running for every later command."""

import subprocess

import pytest
from procs import BIN, ROOT, free_port, wait_for

from laughtrack.synthetic import synth
from laughtrack_cli import server


def test_the_configured_server_wins_and_no_server_means_a_temporary_one():
    api, line = server.choose({"PREFECT_API_URL": "http://10.0.0.5:4200/api"})
    assert api == "http://10.0.0.5:4200/api" and "PREFECT_API_URL" in line
    port = free_port()   # nothing listens there
    api, line = server.choose({"PREFECT_SERVER_API_PORT": str(port)})
    assert api is None and f"127.0.0.1:{port}" in line and "laughtrack server start" in line


def test_a_wildcard_bind_is_probed_on_loopback():
    local = server.Local.from_env({"PREFECT_SERVER_API_HOST": "0.0.0.0", "PREFECT_SERVER_API_PORT": "4321"})
    assert local.api == "http://127.0.0.1:4321/api"


def test_stop_without_a_started_server_says_so(tmp_path):
    env = {"PREFECT_HOME": str(tmp_path), "PREFECT_SERVER_API_PORT": str(free_port())}
    with pytest.raises(Exception, match="no laughtrack-started Prefect server"):
        server.stop(env)


def laughtrack(env, *args, timeout=300):
    return subprocess.run([BIN / "laughtrack", *args], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.server
@pytest.mark.timeout(900)
def test_start_then_analyze_reuses_the_server_and_the_run_shows_in_it(tmp_path):
    import os
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(PREFECT_HOME=str(tmp_path / "prefect"), PREFECT_SERVER_API_PORT=str(port), LAUGHTRACK_MODEL="fixture",
               LAUGHTRACK_CACHE=str(tmp_path / "cache"), PREFECT_LOCAL_STORAGE_PATH=str(tmp_path / "storage"))
    clip = tmp_path / "clip.mp4"
    synth.render_to(synth.parse_timeline({"duration_s": 10, "seed": 5, "segments": [
        {"start_s": 0, "end_s": 4, "kind": "speech"}, {"start_s": 4.5, "end_s": 7, "kind": "laughter"}]}), clip)
    started = laughtrack(env, "server", "start")
    try:
        assert started.returncode == 0, started.stderr
        assert f"http://127.0.0.1:{port}" in started.stdout and (tmp_path / "prefect" / "server.pid").is_file()
        assert laughtrack(env, "server", "status").returncode == 0
        again = laughtrack(env, "server", "start")
        assert again.returncode == 0 and "already running" in again.stdout
        for _ in range(2):   # the second: nothing new to analyse, still through the same server
            done = laughtrack(env, "analyze", str(clip), "--db", str(tmp_path / "r.duckdb"))
            assert done.returncode == 0, done.stderr[-2000:]
            assert f"Prefect server: http://127.0.0.1:{port} (running" in done.stderr
            assert "temporary" not in done.stderr
        from prefect.client.orchestration import SyncPrefectClient
        with SyncPrefectClient(f"http://127.0.0.1:{port}/api") as client:
            runs = client.read_flow_runs()
        assert sum(r.state_type.value == "COMPLETED" for r in runs) == 2
    finally:
        stopped = laughtrack(env, "server", "stop")
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    wait_for(lambda: not server.healthy(f"http://127.0.0.1:{port}/api"), 30, what="the server to stop")
    status = laughtrack(env, "server", "status")
    assert status.returncode == 1 and "not running" in status.stdout
    assert laughtrack(env, "server", "stop").returncode == 1


def test_a_stale_pid_file_naming_another_process_is_not_killed(tmp_path):
    import os
    import signal
    from pathlib import Path
    other = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        wait_for(lambda: b"sleep" in Path(f"/proc/{other.pid}/cmdline").read_bytes(), 10, step=0.05,
                 what="sleep to start")
        (tmp_path / "server.pid").write_text(str(other.pid))
        env = {"PREFECT_HOME": str(tmp_path), "PREFECT_SERVER_API_PORT": str(free_port())}
        with pytest.raises(Exception, match="names no running Prefect server"):
            server.stop(env)
        assert other.poll() is None and (tmp_path / "server.pid").is_file()
    finally:
        os.killpg(other.pid, signal.SIGKILL)
        other.wait()
