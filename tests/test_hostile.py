"""Hostile media: everything an upload form or an archive may hold, in one batch through the real
flow. Each file gives a correct result or one `failures` row with a one-line reason; the batch
never stops and nothing half-written is left."""

import os
import struct
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from laughtrack import media
from laughtrack.synthetic import synth
from laughtrack.config import RunConfig
from laughtrack.store import open_store
from laughtrack_cli.main import app

pytestmark = pytest.mark.usefixtures("prefect_server")
GROW_MAX_BYTES = 1 << 30     # a writer in a test never fills a disk: it stops here ...
GROW_MAX_S = 60.0            # ... or after this long, whichever comes first
LAUGH = {"duration_s": 12.0, "seed": 61, "segments": [
    {"start_s": 0, "end_s": 5, "kind": "speech"}, {"start_s": 5, "end_s": 9, "kind": "laughter"}]}


def ff(out: Path, *args: str) -> Path:
    media._run([*args, "-y", str(out)], out, "write")
    return out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """(folder, expectations): name → ("ok", duration_s, streams) or ("fail", reason substring)."""
    d = tmp_path_factory.mktemp("hostile")
    audio = synth.render(synth.parse_timeline(LAUGH))[0]
    wav = media.write_media(audio, d / "src.wav")
    expect = {}
    for ext, codec in (("m4a", "aac"), ("mp3", "libmp3lame"), ("flac", "flac"), ("ogg", "libopus")):
        ff(d / f"audio only.{ext}", "-i", str(wav), "-c:a", codec)
        expect[f"audio only.{ext}"] = ("ok", 12.0, 1)
    expect["src.wav"] = ("ok", 12.0, 1)
    ff(d / "8k mono.wav", "-i", str(wav), "-ar", "8000", "-ac", "1")
    expect["8k mono.wav"] = ("ok", 12.0, 1)
    ff(d / "48k 6ch.mkv", "-i", str(wav), "-ar", "48000", "-ac", "6", "-c:a", "flac")
    expect["48k 6ch.mkv"] = ("ok", 12.0, 1)
    ff(d / "two tracks.mkv", "-i", str(wav), "-f", "lavfi", "-i", "anoisesrc=d=12:a=0.02", "-map", "0:a",
       "-map", "1:a", "-c:a", "aac")
    expect["two tracks.mkv"] = ("ok", 12.0, 2)
    media.write_media(audio[: int(0.3 * 16_000)], d / "short 0.3s.wav")
    expect["short 0.3s.wav"] = ("ok", 0.3, 1)
    ff(d / "three hours.flac", "-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono", "-t", "10800", "-c:a", "flac")
    expect["three hours.flac"] = ("ok", 10800.0, 1)
    video = media.write_media(audio, d / "video.mp4")
    for name in ("name with spaces.mp4", "ünïcødé 笑.mp4", "new\nline.mp4"):
        (d / name).write_bytes(video.read_bytes())
    # video.mp4 and the three names above are the same bytes: one is analysed, the rest recognized
    mkv = media.write_media(audio, d / "whole.mkv")
    (d / "truncated.mkv").write_bytes(mkv.read_bytes()[: mkv.stat().st_size * 2 // 3])
    expect["truncated.mkv"] = ("ok", None, 1)   # what survives is analysed
    (d / "truncated.mp4").write_bytes(video.read_bytes()[: video.stat().st_size // 2])
    expect["truncated.mp4"] = ("fail", "not a readable media file")

    (d / "empty.mp4").write_bytes(b"")
    expect["empty.mp4"] = ("fail", "empty file")
    (d / "random.mp4").write_bytes(np.random.default_rng(1).bytes(100_000))
    expect["random.mp4"] = ("fail", "not a readable media file")
    (d / "notes.txt").write_text("hello\n")
    expect["notes.txt"] = ("fail", "not a readable media file")
    ff(d / "no audio.mp4", "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=5:duration=2", "-c:v", "mpeg4")
    expect["no audio.mp4"] = ("fail", "no audio stream")
    (d / "dir.mp4").mkdir()
    expect["dir.mp4"] = ("fail", "is a directory")
    os.symlink(d / "whole.mkv", d / "link.mkv")        # same bytes as whole.mkv: one analysis
    os.symlink(d / "loop-a.mp4", d / "loop-b.mp4")
    os.symlink(d / "loop-b.mp4", d / "loop-a.mp4")
    expect["loop-a.mp4"] = expect["loop-b.mp4"] = ("fail", "symlink loop")
    locked = media.write_media(audio * 0.5, d / "unreadable.wav")
    locked.chmod(0)
    expect["unreadable.wav"] = ("ok", 12.0, 1) if os.geteuid() == 0 else ("fail", "permission denied")
    return d, expect


class Grower(threading.Thread):
    """A WAV recording still arriving at `rate` bytes/s: a valid header, then data appended until
    stopped — bounded by GROW_MAX_BYTES and GROW_MAX_S whatever the test does."""

    def __init__(self, path: Path, rate: float):
        super().__init__(daemon=True)
        self.path, self.rate, self.stop = path, rate, threading.Event()
        # the header a recorder streaming a WAV writes: RIFF and data sizes unknown (0xFFFFFFFF)
        path.write_bytes(b"RIFF\xff\xff\xff\xffWAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, 16_000, 32_000, 2, 16)
                         + b"data\xff\xff\xff\xff")
        self.written, self.seconds = 0, 0.0

    def run(self) -> None:
        block, t0 = b"\0" * (1 << 20), time.monotonic()
        with open(self.path, "ab") as f:
            while not self.stop.is_set() and self.written < GROW_MAX_BYTES and time.monotonic() - t0 < GROW_MAX_S:
                f.write(block)
                f.flush()
                self.written += len(block)
                ahead = self.written / self.rate - (time.monotonic() - t0)
                if ahead > 0:
                    self.stop.wait(ahead)
        self.seconds = time.monotonic() - t0

    def __enter__(self) -> "Grower":
        self.start()
        while self.written == 0 and self.is_alive():
            time.sleep(0.01)
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.join()


@pytest.mark.timeout(600)
def test_every_hostile_file_gets_a_result_or_one_failure_line(corpus, tmp_path, cache_dir):
    from flows.analyze import analyze_batch
    d, expect = corpus
    db = tmp_path / "r.duckdb"
    with Grower(d / "growing.wav", rate=16e6):
        # a folder yields media files only; a text file or a folder named x.mp4 is met when named
        result = analyze_batch(paths=[str(d), str(d / "notes.txt"), str(d / "dir.mp4")],
                               config=RunConfig(db=str(db), model="fixture", device="cpu", cache_dir=str(cache_dir)))
    store = open_store(db)
    by_name = {}
    for a in result.analysed:
        by_name.setdefault(os.path.basename(a.path), []).append(a)
    fails = {os.path.basename(f.path): f for f in result.failures}
    for name, outcome in expect.items():
        if outcome[0] == "ok":
            assert name in by_name, (name, fails.get(name))
            assert len(by_name[name]) == outcome[2], name
        else:
            assert name in fails, (name, by_name.get(name))
            message = fails[name].message
            assert outcome[1] in message and name in message and "\n" not in message.replace(name, ""), message
    assert "still being written" in fails["growing.wav"].message, fails.get("growing.wav")
    _, rows = store.query("SELECT count(*) FROM failures")
    assert rows[0][0] == len(result.failures)
    durations = dict(store.query("SELECT regexp_extract(path, '[^/]+$'), duration_s FROM engagement")[1])
    for name, outcome in expect.items():
        if outcome[0] == "ok" and outcome[1] is not None and name in durations:
            assert durations[name] == pytest.approx(outcome[1], abs=0.1), name
    # the same bytes under several names (and a symlink) are analysed once, the other names recognized
    skipped = {os.path.basename(s.path) for s in result.skipped}
    for group in ({"video.mp4", "name with spaces.mp4", "ünïcødé 笑.mp4", "new\nline.mp4"}, {"whole.mkv", "link.mkv"}):
        assert len(group & set(by_name)) == 1 and group - set(by_name) <= skipped, group
    _, minutes = store.query("SELECT count(*) FROM minute_density d JOIN engagement e USING (analysis_id) "
                             "WHERE e.duration_s > 10000")
    assert minutes[0][0] == 180
    _, orphans = store.query("SELECT (SELECT count(*) FROM windows WHERE analysis_id NOT IN "
                             "(SELECT analysis_id FROM analyses)) + (SELECT count(*) FROM videos WHERE video_id "
                             "NOT IN (SELECT video_id FROM analyses))")
    assert orphans[0][0] == 0


@pytest.mark.timeout(180)
def test_a_file_growing_at_50_mb_s_is_refused_in_one_line(tmp_path, cache_dir, artifacts):
    """`laughtrack analyze` on a recording in progress: hashed up to the size it had, then refused
    as still being written, instead of hashing a file that grows faster than it is read."""
    recording = tmp_path / "recording.wav"
    with Grower(recording, rate=50e6) as grower:
        size_before = recording.stat().st_size
        t0 = time.monotonic()
        result = CliRunner().invoke(app, ["analyze", str(recording), "--db", str(tmp_path / "r.duckdb"), "--model",
                                          "fixture", "--device", "cpu", "--cache", str(cache_dir)])
        wall = time.monotonic() - t0
        grew = recording.stat().st_size - size_before
    assert grew > 0, "the file did not grow during the analysis: the test proves nothing"
    assert result.exit_code == 1, result.output
    assert result.output.count("still being written") == 1 and "Traceback" not in result.output, result.output
    _, rows = open_store(tmp_path / "r.duckdb").query("SELECT stage, message FROM failures")
    # caught while hashing or probing, or, if the writer paused just then, before or after decoding
    assert len(rows) == 1 and rows[0][0] in ("probe", "extract") and "still being written" in rows[0][1]
    (artifacts / "growing-file.txt").write_text(
        f"analyze on a file growing at {grower.written / max(grower.seconds, 1e-9) / 1e6:.0f} MB/s: "
        f"returned in {wall:.1f} s (exit 1, one 'still being written' line)\n")
