"""Memory: peak RSS analysing a 3-hour video vs a 10-minute one, and RSS across a 200-video batch.

    python -m bench.memory [--json FILE] [--videos 200]

Each measurement runs `analyze_batch` with the fixture model in a fresh child process and reads
that process's peak RSS (ru_maxrss). The 3-hour file is the 10-minute one looped 18 times, so the
content is the same kind. Targets (issue 6): peak(3 h) ≤ 1.5 × peak(10 min); no growth across the
batch (RSS after the last video vs after the first quarter).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def child(paths: list[str], db: str, cache: str) -> dict:
    """Run in the child: analyse, sampling RSS at each finished video."""
    from flows.analyze import analyze_batch
    from laughtrack import progress
    from laughtrack.config import RunConfig
    from laughtrack.records import Stage
    samples: list[float] = []
    lock = threading.Lock()

    def on_stage(path: str, stage: str) -> None:
        if stage == Stage.DONE:
            with lock:
                samples.append(rss_mb())
    t0 = time.perf_counter()
    with progress.following(on_stage):
        result = analyze_batch(paths=paths, config=RunConfig(db=db, model="fixture", device="cpu", cache_dir=cache))
    return {"analysed": len(result.analysed), "failed": len(result.failures), "wall_s": time.perf_counter() - t0,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "rss_after_each_mb": samples}


def run_child(paths: list[Path], work: Path, name: str) -> dict:
    env = dict(os.environ, PREFECT_HOME=str(work / f"prefect-{name}"), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               DO_NOT_TRACK="1", PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL="CRITICAL",
               PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="120")
    out = subprocess.run([sys.executable, "-m", "bench.memory", "--child", str(work / f"{name}.duckdb"),
                          str(work / f"cache-{name}"), *map(str, paths)], env=env, cwd=ROOT,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def make_media(work: Path, videos: int) -> tuple[Path, Path, list[Path]]:
    from laughtrack import media
    from laughtrack.synthetic import synth
    from laughtrack.synthetic.demo import DEMO_TIMELINE
    ten = dict(DEMO_TIMELINE, duration_s=600.0, segments=[
        dict(s, start_s=s["start_s"] + k * 185, end_s=s["end_s"] + k * 185)
        for k in range(3) for s in DEMO_TIMELINE["segments"]])
    ten_path = media.write_media(synth.render(synth.parse_timeline(ten))[0], work / "ten-minutes.flac")
    three = work / "three-hours.flac"
    media._run(["-stream_loop", "17", "-i", str(ten_path), "-c:a", "flac", "-y", str(three)], three, "loop")
    clips = []
    for i in range(videos):
        tl = synth.parse_timeline({"duration_s": 5.0, "seed": 1000 + i, "segments": [
            {"start_s": 0, "end_s": 3, "kind": "speech"}, {"start_s": 3, "end_s": 5, "kind": "laughter"}]})
        clips.append(media.write_media(synth.render(tl)[0], work / f"clip{i:03d}.wav"))
    return ten_path, three, clips


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    ap.add_argument("--videos", type=int, default=200)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if args.child:
        db, cache, *paths = args.child
        print(json.dumps(child(paths, db, cache)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        ten, three, clips = make_media(work, args.videos)
        short = run_child([ten], work, "ten")
        long = run_child([three], work, "three")
        batch = run_child(clips, work, "batch")
    after = batch["rss_after_each_mb"]
    quarter = after[len(after) // 4] if after else 0.0
    result = {
        "ten_minutes": {"peak_rss_mb": round(short["peak_rss_mb"]), "wall_s": round(short["wall_s"], 1)},
        "three_hours": {"peak_rss_mb": round(long["peak_rss_mb"]), "wall_s": round(long["wall_s"], 1)},
        "peak_ratio_3h_vs_10min": round(long["peak_rss_mb"] / short["peak_rss_mb"], 3),
        "batch": {"videos": batch["analysed"], "rss_after_first_quarter_mb": round(quarter),
                  "rss_after_last_mb": round(after[-1]) if after else None,
                  "peak_rss_mb": round(batch["peak_rss_mb"]), "wall_s": round(batch["wall_s"], 1)},
    }
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
