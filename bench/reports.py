"""Report build time for 1 and for 50 videos.

    python -m bench.reports [--videos 50] [--minutes 10]

Fills a fresh DuckDB with N synthetic 10-minute analyses (rows shaped like real ones: a window
every 0.25 s, events, per-minute density, transcripts) and times `write_reports` for one video
and for all of them, side by side in one run.
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from laughtrack import density
from laughtrack.identity import CODE_VERSION
from laughtrack.params import AnalysisParams
from laughtrack.identity import ConfigKey, video_id
from laughtrack.events import Event
from laughtrack.media import AudioStream, FileState, MediaInfo
from laughtrack.records import Job, Lineage, Probed, Video
from reports.site import write_reports
from laughtrack.store import AnalysisRows, open_store
from sensevoice_core import ScanResult, Token, Transcript
from sensevoice_core.tags import EMOTIONS, EVENTS, LANGUAGES

KEY = ConfigKey("0" * 64, AnalysisParams().to_json(), CODE_VERSION, "bench")


def fake_job(i: int, minutes: int) -> Job:
    sha = hashlib.sha256(str(i).encode()).hexdigest()
    vid, path = video_id(sha), f"/videos/talk-{i:03d}.mp4"
    lineage = Lineage(KEY.analysis(sha, 0).analysis_id, vid, 0, "bench", KEY.model_sha256, KEY.params_json,
                      KEY.code_version, KEY.id, "cpu", datetime.now(timezone.utc))
    return Job(path, Probed(path, sha, MediaInfo(path, "mp4", 1, minutes * 60.0, (), ()), FileState(1, 0)),
               Video(vid, sha, 1, "mp4", minutes * 60.0), AudioStream(0, "aac", 2, 48000, minutes * 60.0, None), lineage)


def fake_analysis(i: int, minutes: int, rng: np.random.Generator) -> AnalysisRows:
    duration_ms = minutes * 60_000
    n = duration_ms // 250
    start = np.arange(n) * 0.25
    names = {"event": EVENTS, "emotion": EMOTIONS, "language": LANGUAGES}
    probs = {f: rng.dirichlet(np.ones(len(v)) * 0.3, n).astype(np.float32) for f, v in names.items()}
    scan = ScanResult(start_s=start, end_s=start + 0.5, probs=probs, names=names, text=[""] * n)
    evs = sorted((Event(str(rng.choice(["Laughter", "Applause", "Speech"])), a, a + int(rng.integers(500, 8000)), 0.9, 0.8)
                  for a in rng.integers(0, duration_ms - 8000, 12 * minutes)), key=lambda e: e.start_ms)
    transcripts = [Transcript(a / 1000, a / 1000 + 20, "en", "NEUTRAL", "Speech", "<|en|>" + "ba " * 40, "ba " * 40,
                              tuple(Token("ba", a / 1000 + k * 0.5, a / 1000 + k * 0.5 + 0.3) for k in range(40)))
                   for a in range(0, duration_ms, 30_000)]
    return AnalysisRows.build(fake_job(i, minutes), minutes * 60.0, scan, evs, transcripts,
                              density.minute_density(evs, duration_ms), density.minute_labels(evs, duration_ms))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=50)
    ap.add_argument("--minutes", type=int, default=10)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(Path(tmp) / "bench.duckdb")
        t0 = time.perf_counter()
        for i in range(args.videos):
            store.write_analysis(fake_analysis(i, args.minutes, rng))
        fill = time.perf_counter() - t0
        first = store.report_targets()[0]["video_id"]
        t1 = time.perf_counter()
        write_reports(store, Path(tmp) / "one", [first])
        one = time.perf_counter() - t1
        t2 = time.perf_counter()
        write_reports(store, Path(tmp) / "all")
        every = time.perf_counter() - t2
    print(f"{args.videos} synthetic {args.minutes}-min analyses written in {fill:.1f} s")
    print(f"report for 1 video (+ collection index): {one:.2f} s")
    print(f"reports for {args.videos} videos (+ collection index): {every:.2f} s "
          f"({every / args.videos:.2f} s per video)")


if __name__ == "__main__":
    main()
