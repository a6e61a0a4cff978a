"""Features of a whole scan, three ways, on one CPU core (the GPU path's CPU proxy, issue 22).

    python -m bench.features [--minutes 15] [--json FILE]

The workload is what an adaptive scan at the default windows (0.6 s every 0.3 s) may ask for:
the features of every even window and of every odd window between two even ones.

- per window: the window-by-window recipe (kaldi-native-fbank per window, LFR, CMVN) as the scan
  computed it before; each frame of the stream is computed 1.5 times, with a Python loop per window.
- stream (knf, numpy): the frames of the stream once (kaldi-native-fbank's online fbank, fed 30 s
  chunks), each window's rows gathered by index; what the int8 CPU path runs (no torch).
- stream (torch): the same with lhotse's Kaldi fbank on a torch device (here device="cpu"): what
  the torch backend, and `--device cuda`, runs.

It also times a whole adaptive scan of the fixture model on the torch backend with each stream
frontend (the model is tiny: the features are a large share of the work, as on a GPU). Audio is rendered in memory
(the bench talks), so decoding is left out.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from bench.__main__ import talk_timeline

SR = 16_000
WINDOW, HALF = 9600, 4800


def talks(minutes: float) -> list[np.ndarray]:
    from laughtrack.synthetic import synth
    n = max(1, round(minutes / 5))
    return [synth.render(synth.parse_timeline(talk_timeline(minutes * 60 / n, seed=200 + i)))[0] for i in range(n)]


def per_window(frontend, audio: np.ndarray) -> int:
    count = 0
    for start in range(0, len(audio) - WINDOW + 1, WINDOW):
        frontend(audio[start:start + WINDOW])
        count += 1
        if start >= WINDOW:
            frontend(audio[start - HALF:start + HALF])
            count += 1
    return count


def stream(frontend, audio: np.ndarray) -> int:
    from sensevoice_core.stream import stream_windows
    chunks = [audio[i:i + 30 * SR] for i in range(0, len(audio), 30 * SR)]
    return sum(1 + (w.between is not None) for w in stream_windows(frontend, chunks, WINDOW, WINDOW, between=True))


def best_of(fn, runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=15.0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    import torch

    from sensevoice_core import ScanOptions, load_model, scan
    torch_model = load_model("fixture", device="cpu", backend="torch", threads=1)
    torch.set_num_threads(1)            # funasr's load sets its own
    numpy_frontend, torch_frontend = torch_model.frontend.base, torch_model.frontend
    audio = talks(args.minutes)
    seconds = sum(len(a) for a in audio) / SR
    windows = sum(per_window(numpy_frontend, a[: WINDOW * 3]) for a in audio[:1])   # warm both up
    stream(torch_frontend, audio[0][: 60 * SR])
    rows = {}
    for name, fn, frontend in (("per window (knf)", per_window, numpy_frontend),
                               ("stream (knf, numpy)", stream, numpy_frontend),
                               ("stream (torch, lhotse)", stream, torch_frontend)):
        counts = []
        took = best_of(lambda: counts.append(sum(fn(frontend, a) for a in audio)))
        windows = counts[-1]
        rows[name] = {"seconds": round(took, 3), "x_realtime": round(seconds / took, 1), "windows": windows}
    base = rows["per window (knf)"]["seconds"]
    for row in rows.values():
        row["speedup"] = round(base / row["seconds"], 2)
    options = ScanOptions(window_s=0.6, hop_s=0.3, adaptive=True)
    scans = {}
    for name, frontend in (("scan, torch backend, stream features with knf (numpy)", None),
                           ("scan, torch backend, stream features with lhotse (torch)", torch_frontend)):
        model = torch_model
        if frontend is None:
            model = load_model("fixture", device="cpu", backend="torch", threads=1)
            object.__setattr__(model, "frontend", numpy_frontend)
        took = best_of(lambda m=model: [scan(m, a, options) for a in audio], runs=2)
        scans[name] = {"seconds": round(took, 3), "x_realtime": round(seconds / took, 1)}
    out = {"audio_s": round(seconds, 1), "threads": torch.get_num_threads(), "features": rows, "scan": scans}
    print(json.dumps(out, indent=1))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
