"""The GPU bench: the seed's funasr generate and laughtrack end to end on one GPU, side by side.

    python -m bench.gpu [--device cuda] [--files 12] [--minutes 5] [--json FILE] [--fullsize-dir DIR]

1. The full-size random-weight model (bench/fullsize.py: the released architecture; built once).
2. The bench talks: FILES x MINUTES mp4 files (1 h in 12 files by default), rendered in parallel.
3. The seed: funasr `AutoModel.generate` on the decoded audio, fp32 (funasr's fp16 and bf16 are
   broken upstream), 15 s chunks, batch 4 and batch 64, each in a child process.
4. laughtrack: `analyze_batch` through the Prefect flow on the same files — decode, scan,
   transcripts, database, report — on DEVICE (bf16 autocast on CUDA), in a child process, while
   nvidia-smi samples the GPU's utilisation every 250 ms.
5. One table and one JSON (`bench/gpu-last-run.json`): `laughtrack_x_realtime`, `seed_x_realtime`
   (batch 64), `seed_b4_x_realtime`, `ratio`, `gpu_busy` (mean utilisation while the model stage
   ran), per-stage seconds, peak GPU memory.

Sized to finish in about 5 minutes on one H100/H200, so that it fits a 15-minute device lease
with time for a rerun (`--minutes 1 --files 2 --device cpu` runs it on a CPU to check it works).
The device machine lacks funasr, prefect, duckdb, av, ffmpeg and kaldi-native-fbank: carry them as
wheels (../shared/GPU.md); the fixture is not needed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from bench.__main__ import DEFAULT_FULLSIZE, talk_timeline

ROOT = Path(__file__).resolve().parents[1]
LAST_RUN = ROOT / "bench" / "gpu-last-run.json"


def render_one(args: tuple[Path, float, int]) -> Path:
    from laughtrack import media
    from laughtrack.synthetic import synth
    path, seconds, seed = args
    data = talk_timeline(seconds, seed=seed)
    path.with_suffix(".timeline.json").write_text(json.dumps(data))
    media.write_media(synth.render(synth.parse_timeline(data))[0], path)
    return path


def make_videos(out: Path, count: int, seconds: float) -> list[Path]:
    jobs = [(out / f"talk{i + 1:02d}.mp4", seconds, 300 + i) for i in range(count)]
    with ProcessPoolExecutor(max(1, min(count, (os.cpu_count() or 2) - 1))) as pool:
        return list(pool.map(render_one, jobs))


class GpuSampler(threading.Thread):
    """nvidia-smi's utilisation and memory every 250 ms, with wall-clock times."""

    def __init__(self):
        super().__init__(daemon=True)
        self.samples: list[tuple[float, float, float]] = []     # (epoch s, util %, memory MiB)
        self.proc = None

    def run(self) -> None:
        if not shutil.which("nvidia-smi"):
            return
        self.proc = subprocess.Popen(["nvidia-smi", "--query-gpu=utilization.gpu,memory.used",
                                      "--format=csv,noheader,nounits", "-lms", "250"],
                                     stdout=subprocess.PIPE, text=True)
        for line in self.proc.stdout:
            try:
                util, mem = (float(x) for x in line.split(",")[:2])
            except ValueError:
                continue
            self.samples.append((time.time(), util, mem))

    def stop(self) -> None:
        if self.proc:
            self.proc.terminate()

    def busy(self, spans: list[tuple[float, float]]) -> float | None:
        """Mean utilisation (0-1) over the samples inside `spans`."""
        inside = [u for t, u, _ in self.samples if any(a <= t <= b for a, b in spans)]
        return round(statistics.mean(inside) / 100, 3) if inside else None


def child(pipeline: str, model: Path, videos: list[Path], work: Path, *extra: str) -> dict:
    env = dict(os.environ, PREFECT_HOME=str(work / "prefect"), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               DO_NOT_TRACK="1", PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL="CRITICAL",
               PREFECT_LOCAL_STORAGE_PATH=str(work / "prefect" / "storage"))
    proc = subprocess.run([sys.executable, "-m", "bench.e2e", pipeline, "--model", str(model), "--work", str(work),
                           *extra, *map(str, videos)], env=env, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"bench.gpu: the {pipeline} run failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--files", type=int, default=12)
    ap.add_argument("--minutes", type=float, default=5.0, help="length of each file")
    ap.add_argument("--fullsize-dir", type=Path, default=DEFAULT_FULLSIZE)
    ap.add_argument("--json", type=Path, default=LAST_RUN)
    args = ap.parse_args(argv)
    t_all = time.perf_counter()
    if not (args.fullsize_dir / "model.pt").exists():
        from bench import fullsize
        fullsize.build(args.fullsize_dir)
    work = Path(tempfile.mkdtemp(prefix="laughtrack-gpu-bench-"))
    videos = make_videos(work, args.files, args.minutes * 60)
    prep_s = time.perf_counter() - t_all
    seeds = {b: child("seed", args.fullsize_dir, videos, work / f"seed{b}", "--device", args.device, "--batch", str(b))
             for b in (4, 64)}
    sampler = GpuSampler()
    sampler.start()
    ours = child("laughtrack", args.fullsize_dir, videos, work / "laughtrack", "--device", args.device)
    sampler.stop()
    out = {"device": args.device, "gpu": _gpu_name(), "files": args.files, "audio_s": ours["audio_s"],
           "laughtrack_x_realtime": round(ours["x_realtime"], 1),
           "seed_x_realtime": round(seeds[64]["x_realtime"], 1), "seed_b4_x_realtime": round(seeds[4]["x_realtime"], 1),
           "ratio": round(ours["x_realtime"] / seeds[64]["x_realtime"], 2),
           "gpu_busy": sampler.busy(ours.get("model_spans") or []),
           "gpu_busy_whole_run": sampler.busy([(sampler.samples[0][0], sampler.samples[-1][0])])
           if sampler.samples else None,
           "peak_gpu_mem_mb": ours.get("peak_gpu_mem_mb"), "stages": ours["stages"],
           "seed_stages": {b: s["stages"] for b, s in seeds.items()}, "laughtrack": ours,
           "seed": {str(b): s for b, s in seeds.items()}, "prep_s": round(prep_s, 1),
           "bench_wall_s": round(time.perf_counter() - t_all, 1)}
    args.json.write_text(json.dumps(out, indent=1, default=str) + "\n")
    _print(out)
    shutil.rmtree(work, ignore_errors=True)
    return 0


def _gpu_name() -> str | None:
    if not shutil.which("nvidia-smi"):
        return None
    done = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True)
    return done.stdout.strip() or None


def _print(out: dict) -> None:
    print(f"{out['audio_s'] / 60:.0f} min of audio in {out['files']} files on {out['gpu'] or out['device']}")
    print(f"  seed, funasr generate, batch 4:  {out['seed_b4_x_realtime']:>8.1f}x realtime")
    print(f"  seed, funasr generate, batch 64: {out['seed_x_realtime']:>8.1f}x realtime")
    print(f"  laughtrack end to end:           {out['laughtrack_x_realtime']:>8.1f}x realtime "
          f"(ratio {out['ratio']:.2f}; GPU busy {out['gpu_busy']} in the model stage)")
    print("  stages (s): " + ", ".join(f"{k} {v:.1f}" for k, v in out["stages"].items()))
    print(f"  peak GPU memory {out['peak_gpu_mem_mb']} MB; bench wall {out['bench_wall_s']} s -> {LAST_RUN.name}")


if __name__ == "__main__":
    raise SystemExit(main())
