"""Hostile media: everything an upload form or an archive may hold, in one batch through the real
flow. Each file gives a correct result or one `failures` row with a one-line reason; the batch
never stops and nothing half-written is left."""

import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from laughtrack import media, store, synth

pytestmark = pytest.mark.usefixtures("prefect_server")
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


def grow(path: Path, stop: threading.Event) -> None:
    """A WAV upload still arriving: valid header, data appended every few milliseconds."""
    media.write_media(np.zeros(16_000, np.float32), path)
    with open(path, "ab") as f:
        while not stop.is_set():
            f.write(b"\0" * 32_000)
            f.flush()
            time.sleep(0.002)


def test_every_hostile_file_gets_a_result_or_one_failure_line(corpus, tmp_path):
    from flows.analyze import analyze_batch
    d, expect = corpus
    stop = threading.Event()
    grower = threading.Thread(target=grow, args=(d / "growing.wav", stop), daemon=True)
    grower.start()
    time.sleep(0.2)
    db = tmp_path / "r.duckdb"
    try:
        # a folder yields media files only; a text file or a folder named x.mp4 is met when named
        result = analyze_batch(paths=[str(d), str(d / "notes.txt"), str(d / "dir.mp4")], db=str(db),
                               model="fixture", device="cpu",
                               cache_dir=str(tmp_path / "cache"))
    finally:
        stop.set()
        grower.join()
    by_name = {}
    for a in result.analysed:
        by_name.setdefault(os.path.basename(a["path"]), []).append(a)
    fails = {os.path.basename(f["path"]): f for f in result.failures}
    for name, outcome in expect.items():
        if outcome[0] == "ok":
            assert name in by_name, (name, fails.get(name))
            assert len(by_name[name]) == outcome[2], name
        else:
            assert name in fails, (name, by_name.get(name))
            message = fails[name]["message"]
            assert outcome[1] in message and name in message and "\n" not in message.replace(name, ""), message
    growing = by_name.get("growing.wav") or fails.get("growing.wav")
    assert growing, "the growing upload was neither analysed nor recorded as a failure"
    if "growing.wav" in fails:
        assert "still being written" in fails["growing.wav"]["message"] or "changed while" in fails["growing.wav"]["message"]
    _, rows = store.query(db, "SELECT count(*) FROM failures")
    assert rows[0][0] == len(result.failures)
    durations = dict(store.query(db, "SELECT regexp_extract(path, '[^/]+$'), duration_s FROM engagement")[1])
    for name, outcome in expect.items():
        if outcome[0] == "ok" and outcome[1] is not None and name in durations:
            assert durations[name] == pytest.approx(outcome[1], abs=0.1), name
    # the same bytes under several names (and a symlink) are analysed once, the other names recognized
    skipped = {os.path.basename(s["path"]) for s in result.skipped}
    for group in ({"video.mp4", "name with spaces.mp4", "ünïcødé 笑.mp4", "new\nline.mp4"}, {"whole.mkv", "link.mkv"}):
        assert len(group & set(by_name)) == 1 and group - set(by_name) <= skipped, group
    _, minutes = store.query(db, "SELECT count(*) FROM minute_density d JOIN engagement e USING (analysis_id) "
                                 "WHERE e.duration_s > 10000")
    assert minutes[0][0] == 180
    _, orphans = store.query(db, "SELECT (SELECT count(*) FROM windows WHERE analysis_id NOT IN "
                                 "(SELECT analysis_id FROM analyses)) + (SELECT count(*) FROM videos WHERE video_id "
                                 "NOT IN (SELECT video_id FROM analyses))")
    assert orphans[0][0] == 0
