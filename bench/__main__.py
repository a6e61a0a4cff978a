"""Benchmarks: `python -m bench [--quick] [--json FILE]` from the repo root.

Scan throughput (× realtime) of the bundled fixture and of the full-size SenseVoiceSmall
architecture with RANDOM weights, measured side by side in one run on the same synthetic audio.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from bench import fullsize
from laughtrack import synth
from sensevoice_core import ScanOptions, load_model, scan


def bench_audio(seconds: float) -> np.ndarray:
    """Speech with laughter and applause every ~20 s: the mix a talk video has."""
    segs, t = [], 0.0
    while t + 20 <= seconds:
        segs += [{"start_s": t, "end_s": t + 15, "kind": "speech"},
                 {"start_s": t + 15, "end_s": t + 17.5, "kind": "laughter"},
                 {"start_s": t + 17.5, "end_s": t + 19.5, "kind": "applause"}]
        t += 20
    return synth.render(synth.parse_timeline({"duration_s": seconds, "seed": 1, "segments": segs}))[0]


def time_scan(model, audio: np.ndarray, options: ScanOptions, repeats: int) -> float:
    """Best-of-`repeats` seconds for one scan (the first call also warms up)."""
    scan(model, audio[: 16_000 * 4], options)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        scan(model, audio, options)
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="shorter audio, one repeat")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--fullsize-dir", type=Path, help="reuse a random full-size dir built before")
    args = ap.parse_args(argv)
    seconds, repeats = (60.0, 1) if args.quick else (180.0, 2)
    audio = bench_audio(seconds)
    options = ScanOptions()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        full_dir = args.fullsize_dir or fullsize.build(Path(tmp) / "fullsize-random")
        build_s = time.perf_counter() - t0
        for name, source, note in (("fixture", "fixture", "trained tiny fixture"),
                                   ("SenseVoiceSmall-size", full_dir, "RANDOM weights, real architecture")):
            model = load_model(source, device="auto")
            elapsed = time_scan(model, audio, options, repeats)
            rows.append({"model": name, "note": note, "params": fullsize.parameter_count(model.module),
                         "device": str(model.device), "dtype": str(model.dtype).removeprefix("torch."),
                         "threads": torch.get_num_threads(), "audio_s": seconds,
                         "window_s": options.window_s, "hop_s": options.hop_s,
                         "batch_size": options.batch_size, "scan_s": round(elapsed, 3),
                         "scan_x_realtime": round(seconds / elapsed, 1)})
            del model
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report = {"scan": rows, "fullsize_build_s": round(build_s, 1), "peak_rss_mb": round(peak_mb),
              "cpu_count": os.cpu_count(), "torch": torch.__version__}
    table = Table(title=f"Scan throughput, {seconds:.0f} s of synthetic audio, side by side")
    for col in ("model", "params", "device", "dtype", "threads", "scan s", "× realtime", "note"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["model"], f"{r['params'] / 1e6:.1f} M", r["device"], r["dtype"], str(r["threads"]),
                      f"{r['scan_s']:.2f}", f"{r['scan_x_realtime']:.1f}", r["note"])
    Console().print(table)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
