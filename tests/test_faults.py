"""Hardening, as an adversary tries it (issue 21): interrupts with a temporary Prefect server, full
disks, a corrupt database, a truncated cache file, runaway queries, late-starting audio, and the
first hour's friction. Each test is the repro of a fault found on the landed code."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from procs import BIN, stop, wait_for
from typer.testing import CliRunner

from laughtrack import cache, media
from laughtrack.synthetic import synth
from laughtrack.store import open_store
from laughtrack_cli.main import app

TALK = {"duration_s": 30.0, "seed": 81, "segments": [
    {"start_s": 0, "end_s": 10, "kind": "speech"}, {"start_s": 10, "end_s": 14, "kind": "laughter"},
    {"start_s": 15, "end_s": 24, "kind": "speech"}, {"start_s": 25, "end_s": 29, "kind": "applause"}]}
HEAVY = "SELECT sum(a.range * b.range) FROM range(100000000) a, range(1000) b"   # runs for hours
GREEDY = "SELECT count(DISTINCT a.range * 1000 + b.range) FROM range(10000000) a, range(300) b"   # ~19 GB


@pytest.fixture(scope="module")
def talks(tmp_path_factory) -> list[Path]:
    d = tmp_path_factory.mktemp("fault-media")
    out = []
    for i in range(2):
        synth.render_to(synth.parse_timeline(dict(TALK, seed=81 + i)), d / f"talk{i}.mp4")
        out.append(d / f"talk{i}.mp4")
    return out


def base_env(tmp_path: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API", "LAUGHTRACK_"))}
    return dict(env, PREFECT_HOME=str(tmp_path / "prefect"), PREFECT_LOCAL_STORAGE_PATH=str(tmp_path / "storage"),
                LAUGHTRACK_CACHE=str(tmp_path / "cache"), LAUGHTRACK_MODEL="fixture", LAUGHTRACK_DEVICE="cpu",
                PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1", **extra)


@pytest.fixture
def env(prefect_server, tmp_path) -> dict:
    """A `laughtrack` subprocess's environment: the session's Prefect server, private caches."""
    from prefect.settings import PREFECT_API_URL
    return base_env(tmp_path, PREFECT_API_URL=PREFECT_API_URL.value())


@pytest.fixture
def spawn():
    """Popen in a session of its own; whatever is still running at the end is killed."""
    started = []

    def start(args, **kwargs) -> subprocess.Popen:
        proc = subprocess.Popen(args, start_new_session=True, **kwargs)
        started.append(proc)
        return proc
    yield start
    for proc in started:
        stop(proc, signals=(signal.SIGKILL,))


def laughtrack(env: dict, *args, timeout: float = 300, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([BIN / "laughtrack", *map(str, args)], env=env, capture_output=True, text=True,
                          timeout=timeout, input=stdin)


def servers_of(home: Path) -> list[int]:
    """Prefect server processes that run in `home` (a temporary server's folder)."""
    found = []
    for cwd in Path("/proc").glob("[0-9]*/cwd"):
        try:
            if os.readlink(cwd) == str(home) and b"prefect" in (cwd.parent / "cmdline").read_bytes():
                found.append(int(cwd.parent.name))
        except OSError:
            continue
    return found


def one_line(text: str) -> list[str]:
    """The error lines of a command's stderr (no traceback may hide among them)."""
    assert "Traceback" not in text, text
    return [line for line in text.splitlines() if line.startswith("error:")]


# --- interrupts --------------------------------------------------------------------------------

@pytest.mark.timeout(600)
@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupt_with_a_temporary_server_stops_in_seconds_and_leaves_no_server(talks, tmp_path, sig, code,
                                                                                      spawn):
    """One file stored before, one in the model step: the signal ends the command within 20 s with
    130/143, says what was stored, stops the temporary server, records no failure; a re-run finishes."""
    env = base_env(tmp_path)         # no PREFECT_API_URL, nothing at PREFECT_SERVER_API_PORT: a temporary server
    db, marker = tmp_path / "r.duckdb", tmp_path / "in-scan"
    first = laughtrack(env, "analyze", talks[0], "--db", db)
    assert first.returncode == 0, first.stderr
    proc = spawn([BIN / "laughtrack", "analyze", *talks, "--db", db], env=dict(
        env, LAUGHTRACK_FAULT="scan", LAUGHTRACK_FAULT_FILE=str(marker)), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    wait_for(lambda: marker.exists() or proc.poll() is not None, 300, step=0.2, what="the model step")
    assert proc.poll() is None, proc.communicate()
    assert servers_of(tmp_path / "prefect"), "no temporary server was running: the test proves nothing"
    t0 = time.monotonic()
    os.killpg(proc.pid, sig)                           # what a terminal's Ctrl-C does: the whole group
    out, err = proc.communicate(timeout=60)
    took = time.monotonic() - t0
    assert proc.returncode == code and took < 20, (proc.returncode, took, err[-2000:])
    assert f"interrupted ({sig.name}): 1 of 2 file(s) stored; run again" in err, err[-2000:]
    assert "ConnectError" not in err and "Traceback" not in err, err[-3000:]
    wait_for(lambda: not servers_of(tmp_path / "prefect"), 10, what="the temporary server to stop")
    store = open_store(db)
    assert store.query("SELECT count(*) FROM failures")[1] == [(0,)]
    rerun = laughtrack(env, "analyze", *talks, "--db", db)
    assert rerun.returncode == 0 and "1 analysed, 1 already analysed" in rerun.stdout, rerun.stdout + rerun.stderr
    assert store.query("SELECT count(*) FROM analyses")[1] == [(2,)]


@pytest.mark.timeout(300)
def test_sigterm_stops_the_page_and_its_temporary_server(tmp_path, spawn):
    env = base_env(tmp_path, GRADIO_TEMP_DIR=str(tmp_path / "gradio"), HOME=str(tmp_path / "home"))
    from procs import free_port
    port = free_port()
    proc = spawn([BIN / "laughtrack", "ui", "--db", tmp_path / "r.duckdb", "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def up():
        import urllib.request
        try:
            return urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).status == 200
        except OSError:
            return proc.poll() is not None and pytest.fail(proc.stdout.read())
    wait_for(up, 180, what="the page")
    assert servers_of(tmp_path / "prefect")
    t0 = time.monotonic()
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=60)
    assert proc.returncode == 143 and time.monotonic() - t0 < 20
    wait_for(lambda: not servers_of(tmp_path / "prefect"), 10, what="the temporary server to stop")


@pytest.mark.timeout(300)
def test_sigint_stops_watch_run_mid_analysis(talks, tmp_path, spawn):
    env = base_env(tmp_path, LAUGHTRACK_FAULT="scan", LAUGHTRACK_FAULT_FILE=str(tmp_path / "in-scan"))
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "talk.mp4").write_bytes(talks[0].read_bytes())
    proc = spawn([BIN / "laughtrack", "watch", inbox, "--run", "--quiet-s", "0.5", "--db",
                             tmp_path / "r.duckdb"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    wait_for(lambda: (tmp_path / "in-scan").exists() or proc.poll() is not None, 300, step=0.2, what="the scan")
    assert proc.poll() is None, proc.communicate()
    t0 = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    proc.communicate(timeout=60)
    assert proc.returncode == 130 and time.monotonic() - t0 < 20
    wait_for(lambda: not servers_of(tmp_path / "prefect"), 10, what="the temporary server to stop")


@pytest.mark.timeout(300)
def test_sigterm_stops_serve_in_seconds(tmp_path, prefect_server, spawn):
    from prefect.settings import PREFECT_API_URL
    env = base_env(tmp_path, PREFECT_API_URL=PREFECT_API_URL.value())
    (tmp_path / "inbox").mkdir()
    proc = spawn([BIN / "laughtrack", "serve", "--inbox", tmp_path / "inbox", "--db", tmp_path / "r.duckdb"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=tmp_path)
    wait_for(lambda: _deployments_served(prefect_server) or proc.poll() is not None, 180, step=1,
             what="the deployments to be served")
    assert proc.poll() is None, proc.communicate()[0][-3000:]
    t0 = time.monotonic()
    os.killpg(proc.pid, signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 143 and time.monotonic() - t0 < 20, out[-3000:]


def _deployments_served(_home) -> bool:
    from prefect import get_client
    with get_client(sync_client=True) as client:
        return any(d.name == "analyze-upload" for d in client.read_deployments())


# --- full disks, corrupt files -----------------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path):
    """A 4 MB tmpfs mounted at a given folder (root can mount one; CI runs as root), unmounted after."""
    mounted = []

    def mount(folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(folder)], capture_output=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here (not root?): {done.stderr.decode().strip()}")
        mounted.append(folder)
        return folder
    yield mount
    for folder in mounted:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(path: Path) -> None:
    """Write to `path` until its file system is full."""
    with open(path, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 65536)
        except OSError:
            pass


@pytest.mark.timeout(300)
def test_a_full_cache_is_one_line_naming_it_and_leaves_no_partial_file(env, small_disk, tmp_path):
    pcm = small_disk(Path(env["LAUGHTRACK_CACHE"]) / "pcm")          # the extracted audio's folder is full
    stale = pcm / ".old.v2.s16.999999999.part"                       # a killed run's leftover
    stale.write_bytes(b"\0" * 1000)
    (pcm / "filler").write_bytes(b"\0" * (3 << 20))                 # ~1 MB left
    long = tmp_path / "long.mp4"
    synth.render_to(synth.parse_timeline(dict(TALK, duration_s=90.0)), long)    # 2.9 MB of PCM
    t0 = time.monotonic()
    done = laughtrack(env, "analyze", long, "--db", tmp_path / "r.duckdb")
    assert done.returncode == 1 and time.monotonic() - t0 < 120
    errors = one_line(done.stderr)
    assert len(errors) == 1 and f"'{pcm}': no space left on the device" in errors[0], done.stderr
    assert not list(pcm.glob(".*.part")), "a partial file was left (or the stale one kept)"
    if (tmp_path / "r.duckdb").exists():
        assert open_store(tmp_path / "r.duckdb").query("SELECT count(*) FROM failures")[1] == [(0,)]


@pytest.mark.timeout(300)
def test_a_full_database_disk_fails_in_one_line_within_30_s(env, small_disk, talks, tmp_path):
    disk = small_disk(tmp_path / "db")
    fill(disk / "filler")
    t0 = time.monotonic()
    done = laughtrack(env, "analyze", talks[0], "--db", disk / "r.duckdb")
    took = time.monotonic() - t0
    assert done.returncode == 1 and took < 30 + 15, (took, done.stderr)        # + process and Prefect start-up
    errors = one_line(done.stderr)
    assert len(errors) == 1 and f"'{disk / 'r.duckdb'}': no space left on the device" in errors[0], done.stderr


@pytest.fixture(scope="module")
def analysed_db(tmp_path_factory, talks, prefect_server):
    from flows.analyze import analyze_batch
    from laughtrack.config import RunConfig
    d = tmp_path_factory.mktemp("analysed")
    config = RunConfig(db=str(d / "r.duckdb"), model="fixture", device="cpu", cache_dir=str(d / "cache"))
    result = analyze_batch(paths=[str(talks[0])], config=config)
    assert not result.failures
    return d / "r.duckdb", d / "cache"


@pytest.mark.timeout(300)
def test_a_corrupt_database_is_one_line_within_30_s_for_every_command(env, analysed_db, talks, tmp_path):
    db = tmp_path / "corrupt.duckdb"
    db.write_bytes(analysed_db[0].read_bytes())
    size = db.stat().st_size
    with open(db, "r+b") as f:                   # scribble over every block after the headers
        for offset in range(12288, size, 262144):
            f.seek(offset + 1000)
            f.write(os.urandom(2000))
    for args in (("query", "SELECT count(*) FROM windows"), ("analyze", talks[1]), ("report", "--out", tmp_path / "r"),
                 ("export", "--video", "0")):
        t0 = time.monotonic()
        done = laughtrack(env, *args, "--db", db)
        assert done.returncode == 1 and time.monotonic() - t0 < 30 + 15, (args, done.stderr)
        errors = one_line(done.stderr)
        assert len(errors) == 1 and f"'{db}'" in errors[0] and "corrupt" in errors[0], (args, done.stderr)


@pytest.mark.timeout(300)
def test_a_truncated_cache_file_is_extracted_again(analysed_db, talks, tmp_path, prefect_server):
    from flows.analyze import analyze_batch
    from laughtrack.config import RunConfig
    reference, cache_dir = analysed_db
    pcm = next((cache_dir / "pcm").glob("*.s16"))
    whole = pcm.stat().st_size
    with open(pcm, "r+b") as f:
        f.truncate(whole // 3)
    config = RunConfig(db=str(tmp_path / "again.duckdb"), model="fixture", device="cpu", cache_dir=str(cache_dir))
    result = analyze_batch(paths=[str(talks[0])], config=config)
    assert not result.failures and len(result.analysed) == 1, result.failures
    assert pcm.stat().st_size == whole
    windows = "SELECT count(*), sum(p_laughter) FROM windows"
    assert open_store(config.store).query(windows)[1] == open_store(reference).query(windows)[1]


# --- queries -----------------------------------------------------------------------------------

@pytest.mark.timeout(120)
@pytest.mark.parametrize("sql, limit, said", [(HEAVY, ["--timeout-s", "3"], "time limit (3 s)"),
                                             (GREEDY, ["--memory", "256MB"], "memory limit (256MB)")])
def test_a_runaway_query_stops_within_its_limit(env, analysed_db, sql, limit, said):
    t0 = time.monotonic()
    done = laughtrack(env, "query", "--db", analysed_db[0], *limit, sql)
    assert done.returncode == 1 and time.monotonic() - t0 < 30, done.stderr
    assert said in done.stderr and len(one_line(done.stderr)) == 1, done.stderr


def test_one_statement_at_a_time_and_sql_from_stdin(env, analysed_db):
    two = laughtrack(env, "query", "--db", analysed_db[0], "SELECT 1; SELECT 2")
    assert two.returncode == 1 and "one SQL statement at a time (got 2)" in two.stderr
    piped = laughtrack(env, "query", "--db", analysed_db[0], "--format", "csv", "-",
                       stdin="SELECT count(*) AS n FROM analyses\n")
    assert piped.returncode == 0 and piped.stdout == "n\n1\n", piped.stderr


# --- time is the video's -----------------------------------------------------------------------

@pytest.mark.timeout(300)
def test_a_late_starting_audio_stream_gives_events_at_the_videos_times(tmp_path, prefect_server):
    """An mp4 whose only audio stream starts 30 s into a 40 s video, laughing 2-6 s into the stream."""
    audio = synth.render(synth.parse_timeline({"duration_s": 10.0, "seed": 90, "segments": [
        {"start_s": 0, "end_s": 2, "kind": "speech"}, {"start_s": 2, "end_s": 6, "kind": "laughter"}]}))[0]
    wav = media.write_media(audio, tmp_path / "late.wav")
    late = tmp_path / "late.mp4"
    media._run(["-f", "lavfi", "-i", "testsrc2=size=160x90:rate=5:duration=40", "-itsoffset", "30", "-i", str(wav),
                "-map", "0:v", "-map", "1:a", "-c:v", "mpeg4", "-c:a", "aac", "-y", str(late)], late, "write")
    assert media.probe(late).audio[0].start_s == pytest.approx(30.0, abs=0.1)
    db = tmp_path / "r.duckdb"
    result = CliRunner().invoke(app, ["analyze", str(late), "--db", str(db), "--model", "fixture", "--device", "cpu",
                                      "--cache", str(tmp_path / "cache")])
    assert result.exit_code == 0, result.output
    assert re.search(r"starts at (29.9|30.0) s into the video; it is padded with silence", result.output), result.output
    store = open_store(db)
    laughs = store.query("SELECT start_s, end_s FROM events WHERE label = 'Laughter'")[1]
    assert len(laughs) == 1 and laughs[0][0] == pytest.approx(32.0, abs=0.6) and laughs[0][1] == pytest.approx(
        36.0, abs=0.6), laughs
    assert store.query("SELECT start_s FROM audio_streams")[1][0][0] == pytest.approx(30.0, abs=0.1)
    assert store.query("SELECT duration_s FROM analyses")[1][0][0] == pytest.approx(40.0, abs=0.2)
    vid = store.query("SELECT video_id FROM videos")[1][0][0]
    cues = CliRunner().invoke(app, ["export", "--video", vid[:6], "--db", str(db), "--format", "csv"])
    assert cues.exit_code == 0 and cues.output.splitlines()[1].startswith("Laughter,3"), cues.output


# --- the first hour ----------------------------------------------------------------------------

@pytest.mark.timeout(300)
def test_paths_are_stored_absolute_and_export_takes_a_prefix_or_a_path(env, talks, tmp_path):
    db = tmp_path / "r.duckdb"
    done = subprocess.run([BIN / "laughtrack", "analyze", talks[0].name, "--db", db], env=env, cwd=talks[0].parent,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Couldn't find ffmpeg" not in done.stderr          # pydub's warning, silenced where funasr imports it
    store = open_store(db)
    assert store.query("SELECT path FROM videos")[1] == [(str(talks[0]),)]
    vid = store.query("SELECT video_id FROM videos")[1][0][0]
    by_id = laughtrack(env, "export", "--video", vid, "--db", db).stdout
    assert by_id.startswith("WEBVTT") and "[laughter]" in by_id
    for ref in (vid[:5], str(talks[0]), str(tmp_path / "renamed.mp4")):
        if ref.endswith("renamed.mp4"):
            Path(ref).write_bytes(talks[0].read_bytes())      # a copy elsewhere is the same video
        assert laughtrack(env, "export", "--video", ref, "--db", db).stdout == by_id, ref
    unknown = laughtrack(env, "export", "--video", "ffff", "--db", db)
    assert unknown.returncode == 1 and "no analysed video" in unknown.stderr


@pytest.mark.timeout(300)
def test_eval_on_analysed_media_needs_no_model(env, talks, tmp_path):
    db = tmp_path / "r.duckdb"
    assert laughtrack(env, "analyze", talks[0], "--db", db).returncode == 0
    labels = tmp_path / "labels.csv"
    labels.write_text(f"path,label,start_s,end_s\n{talks[0]},laughter,10,14\n{talks[0]},applause,25,29\n")
    no_model = {k: v for k, v in env.items() if k != "LAUGHTRACK_MODEL"}     # the default: a hub id, unreachable
    done = laughtrack(no_model, "eval", labels, "--db", db, "--format", "json")
    assert done.returncode == 0, done.stderr
    import json
    assert json.loads(done.stdout)["Laughter"]["event_f1"] == 1.0


def test_without_the_hub_the_error_says_what_to_pass(tmp_path, no_network):
    result = CliRunner().invoke(app, ["analyze", str(tmp_path / "x.mp4"), "--db", str(tmp_path / "r.duckdb"),
                                      "--cache", str(tmp_path / "c")], env={"HOME": str(tmp_path)})
    assert result.exit_code == 1
    assert "--model DIR" in result.output and "--model fixture" in result.output, result.output


@pytest.mark.timeout(300)
def test_a_failure_is_closed_when_its_file_is_analysed_later(talks, tmp_path, prefect_server):
    from flows.analyze import analyze_batch
    from laughtrack.config import RunConfig
    config = RunConfig(db=str(tmp_path / "r.duckdb"), model="fixture", device="cpu", cache_dir=str(tmp_path / "c"))
    later = tmp_path / "later.mp4"
    assert analyze_batch(paths=[str(later)], config=config).failures          # not there yet
    store = open_store(config.store)
    assert store.query("SELECT count(*) FROM failures WHERE resolved_at IS NULL")[1] == [(1,)]
    later.write_bytes(talks[1].read_bytes())
    assert not analyze_batch(paths=[str(later)], config=config).failures
    assert store.query("SELECT count(*), count(resolved_at) FROM failures")[1] == [(1, 1)]


def test_cache_prune_removes_the_least_recently_used_by_age_and_size(tmp_path):
    pcm, uploads = tmp_path / "pcm", tmp_path / "ui-uploads" / "abcd"
    pcm.mkdir()
    uploads.mkdir(parents=True)
    now = time.time()
    for name, size, age_d in (("old", 3000, 10), ("mid", 2000, 3), ("new", 1000, 0)):
        f = pcm / f"{name}.v2.s16"
        f.write_bytes(b"\0" * size)
        (pcm / f"{name}.v2.s16.bytes").write_text(str(size))
        os.utime(f, (now - age_d * 86400,) * 2)
    (uploads / "talk.mp4").write_bytes(b"\0" * 500)
    (tmp_path / "onnx").mkdir()
    (tmp_path / "onnx" / "model.onnx").write_bytes(b"\0" * 9000)
    removed, kept = cache.prune(tmp_path, cache.parse_age("7d"), None, dry_run=True, now=now)
    assert [e.paths[0].name for e in removed] == ["old.v2.s16"] and (pcm / "old.v2.s16").exists()
    removed, kept = cache.prune(tmp_path, cache.parse_age("7d"), cache.parse_size("1.6kB"), now=now)
    assert [e.paths[0].name for e in removed] == ["old.v2.s16", "mid.v2.s16"] and kept == 1500 + 4
    assert sorted(p.name for p in pcm.iterdir()) == ["new.v2.s16", "new.v2.s16.bytes"]
    assert (tmp_path / "onnx" / "model.onnx").exists()
    with pytest.raises(ValueError):
        cache.parse_size("lots")
