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
from pathlib import Path

import numpy as np

from laughtrack import analysis, density, store
from laughtrack.events import Event
from laughtrack.reporting import write_reports
from sensevoice_core import ScanResult, Token, Transcript
from sensevoice_core.tags import EMOTIONS, EVENTS, LANGUAGES


def fake_analysis(i: int, minutes: int, rng: np.random.Generator) -> store.AnalysisRows:
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
    aid, sha = f"bench{i:04d}", hashlib.sha256(str(i).encode()).hexdigest()
    vid = analysis.video_id(sha)
    wide, long = density.minute_density(evs, duration_ms), density.minute_labels(evs, duration_ms)
    return store.AnalysisRows(
        video={"video_id": vid, "sha256": sha, "size_bytes": 1, "container": "mp4", "duration_s": minutes * 60.0},
        path=f"/videos/talk-{i:03d}.mp4",
        stream={"video_id": vid, "stream_index": 0, "codec": "aac", "channels": 2, "sample_rate": 48000,
                "duration_s": minutes * 60.0, "language_tag": None},
        analysis={"analysis_id": aid, "video_id": vid, "stream_index": 0, "model_id": "bench", "model_sha256": "0" * 64,
                  "params_json": analysis.AnalysisParams().to_json(), "code_version": analysis.CODE_VERSION,
                  "device": "cpu", "duration_s": minutes * 60.0, "started_at": None},
        windows=analysis.window_table(aid, scan), segments=analysis.segment_table(aid, transcripts),
        tokens=analysis.token_table(aid, transcripts), events=analysis.event_table(aid, evs),
        minute_density=analysis.rows_table(wide, analysis.MINUTE_DENSITY_SCHEMA, analysis_id=aid, video_id=vid,
                                           stream_index=0),
        minute_events=analysis.rows_table(long, analysis.MINUTE_EVENTS_SCHEMA, analysis_id=aid))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=50)
    ap.add_argument("--minutes", type=int, default=10)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.duckdb"
        t0 = time.perf_counter()
        for i in range(args.videos):
            store.write_analysis(db, fake_analysis(i, args.minutes, rng))
        fill = time.perf_counter() - t0
        first = store.report_targets(db)[0]["video_id"]
        t1 = time.perf_counter()
        write_reports(db, Path(tmp) / "one", [first])
        one = time.perf_counter() - t1
        t2 = time.perf_counter()
        write_reports(db, Path(tmp) / "all")
        every = time.perf_counter() - t2
    print(f"{args.videos} synthetic {args.minutes}-min analyses written in {fill:.1f} s")
    print(f"report for 1 video (+ collection index): {one:.2f} s")
    print(f"reports for {args.videos} videos (+ collection index): {every:.2f} s "
          f"({every / args.videos:.2f} s per video)")


if __name__ == "__main__":
    main()
