"""Many small files in one `analyze` run: where the time goes, and whether memory stays flat.

    python -m bench.many [--clips 1000] [--seconds 5] [--model fixture|DIR] [--json FILE]

Renders N distinct synthetic clips (speech then laughter, each with its own seed; cached in
~/.cache/laughtrack/bench-many-N-S), then runs `analyze_batch` on all of them in this process on
the real Prefect engine (a temporary server, started before the clock). It prints the wall time,
the share of it outside every task run (orchestration: Prefect's own work between tasks, from its
task-run records), task runs per clip, and the RSS sampled every 0.5 s (first and last decile:
flat means the batch does not accumulate per-clip memory).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path.home() / ".cache" / "laughtrack"


def render_clips(count: int, seconds: float) -> Path:
    from laughtrack.synthetic import synth
    out = CACHE / f"bench-many-{count}-{seconds:g}"
    out.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        path = out / f"clip{i:05d}.mp4"
        if path.is_file():
            continue
        split = round(seconds * 0.55, 2)
        tl = synth.parse_timeline({"duration_s": seconds, "seed": 1000 + i, "segments": [
            {"start_s": 0.0, "end_s": split, "kind": "speech"},
            {"start_s": split + 0.2, "end_s": seconds - 0.3, "kind": "laughter" if i % 3 else "applause"}]})
        tmp = path.with_name(f".{path.name}.part.mp4")
        from laughtrack import media
        media.write_media(synth.render(tl)[0], tmp)
        os.replace(tmp, path)
    return out


class RssSampler:
    """Resident set size of this process every `step` seconds, in a daemon thread."""

    def __init__(self, step: float = 0.5):
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(step,), daemon=True)

    def __enter__(self):
        self._t0 = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _run(self, step: float) -> None:
        while not self._stop.is_set():
            self.samples.append((time.perf_counter() - self._t0, _rss_mb()))
            self._stop.wait(step)

    def deciles(self) -> tuple[float, float]:
        """(max RSS in the first tenth of the run after the first sample, max RSS in the last tenth)."""
        n = max(1, len(self.samples) // 10)
        return max(r for _, r in self.samples[:n]), max(r for _, r in self.samples[-n:])


def _rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(clips: Path, model: str, work: Path) -> dict:
    from bench.e2e import _task_runs, _union
    from flows.analyze import analyze_batch
    from laughtrack.config import RunConfig
    from tasks.model import get_model

    config = RunConfig(db=str(work / "many.duckdb"), model=model, device="cpu", cache_dir=str(work / "cache"),
                       report_dir=str(work / "reports"))
    get_model(config.engine())
    warm = sorted(clips.glob("*.mp4"))[:1]
    analyze_batch(paths=[str(p) for p in warm], config=config)   # server, database, first flow run: not timed
    files = sorted(clips.glob("*.mp4"))[1:]
    with RssSampler() as rss:
        t0 = time.perf_counter()
        state = analyze_batch(paths=[str(p) for p in files], config=config, return_state=True)
        wall = time.perf_counter() - t0
    result = state.result()
    tasks = _task_runs(state.state_details.flow_run_id)
    busy = _union(list(tasks.values()))
    first, last = rss.deciles()
    return {"clips": len(files), "analysed": len(result.analysed), "failed": len(result.failures),
            "wall_s": wall, "clips_per_s": len(files) / wall, "task_runs": sum(len(v) for v in tasks.values()),
            "task_runs_by_name": {k: len(v) for k, v in tasks.items()},
            "task_seconds": {k: sum(b - a for a, b in v) for k, v in tasks.items()},
            "orchestration_s": wall - busy, "orchestration_share": (wall - busy) / wall,
            "rss_first_decile_mb": first, "rss_last_decile_mb": last, "rss_peak_mb": max(r for _, r in rss.samples)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--model", default="fixture")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    os.environ.update(PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1",
                      PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL="CRITICAL",
                      PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="120")
    import tempfile
    t0 = time.perf_counter()
    clips = render_clips(args.clips + 1, args.seconds)
    print(f"{args.clips + 1} clips of {args.seconds:g} s in {clips} ({time.perf_counter() - t0:.0f} s)", flush=True)
    with tempfile.TemporaryDirectory(prefix="laughtrack-many-") as tmp:
        os.environ["PREFECT_HOME"] = str(Path(tmp) / "prefect")
        out = run(clips, args.model, Path(tmp))
    out.update(model=args.model, seconds_per_clip=args.seconds)
    print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in out.items()}, indent=1))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
