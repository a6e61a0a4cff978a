"""The sweeps behind laughtrack's speed choices, printed as Markdown (bench/RESULTS.md quotes them).

    python -m bench.sweeps [--fullsize-dir DIR]

All timings are on the random-weight full-size model (bench/fullsize.py), in this one process,
best of 2 after a warm-up; accuracy columns use the trained fixture on the accuracy set.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bench.__main__ import DEFAULT_FULLSIZE, ROOT, talk_timeline

sys.path.insert(0, str(ROOT / "tools"))
import timelines  # noqa: E402 — tools/timelines.py: the accuracy and overlap sets
from laughtrack import density, events  # noqa: E402
from laughtrack.synthetic import demo, synth
from sensevoice_core import ScanOptions, load_model, scan, transcribe
from sensevoice_core.frontend import Frontend
from sensevoice_core.backends import OrtRunner
from sensevoice_core.torch_backend import export_fp32
from sensevoice_core.profile import CLOCK

SR = 16_000


def best(fn, repeats: int = 2) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def backends_sweep(torch_model, full_dir: Path, threads: int) -> str:
    """frames/s of the encoder + CTC head per backend, for scan-window and transcript-chunk shapes."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        export_fp32(torch_model.module, fp32)
        variants = {"torch fp32": torch_model.runner}
        for name, ops in (("onnx int8 (MatMul)", ["MatMul"]), ("onnx int8 (MatMul+Conv)", ["MatMul", "Conv"])):
            out = Path(tmp) / f"{len(variants)}.onnx"
            quantize_dynamic(str(fp32), str(out), weight_type=QuantType.QInt8, op_types_to_quantize=ops)
            variants[name] = OrtRunner(out, threads)
        variants["onnx fp32"] = OrtRunner(fp32, threads)
        for b, t, what in ((64, 8, "64 x 0.5 s windows"), (64, 17, "64 x 1 s windows"), (4, 250, "4 x 15 s chunks")):
            feats = [np.random.default_rng(b).standard_normal((t, 560)).astype(np.float32) for _ in range(b)]
            x, lengths = Frontend.batch(feats)
            row = [what]
            for runner in variants.values():
                s = best(lambda r=runner: r(x, lengths, (0, 1, 2, 15)))
                row.append(f"{b * (t + 4) / s:.0f}")
            rows.append(row)
        header = ["shape"] + [f"{n} frames/s" for n in variants]
        return table(header, rows)


WINDOW_CHOICES = ((0.5, 0.25, True), (0.6, 0.3, True), (0.8, 0.4, True), (1.0, 0.5, False), (1.0, 0.5, True),
                  (1.0, 0.25, False), (1.2, 0.6, True), (1.6, 0.8, True))


def window_sweep(full, fixture, audio60: np.ndarray | None) -> str:
    """Resolution (fixture: the accuracy set, and the overlap set where laughter and applause sound
    under speech) against cost (full-size int8, 60 s of talk; left out with audio60=None)."""
    from laughtrack.labelled.evaluation import FileEval, score
    from laughtrack.labelled.labels import Label
    sets = {"plain": timelines.accuracy_timelines(), "overlap": timelines.overlap_timelines()}
    audios = {k: [(tl, synth.render(tl)[0]) for tl in v.values()] for k, v in sets.items()}
    rows = []
    for w, h, adaptive in WINDOW_CHOICES:
        opts = ScanOptions(window_s=w, hop_s=h, adaptive=adaptive)
        row = [f"{w}/{h}" + (" adaptive" if adaptive else "")]
        n = secs = 0
        for name, items in audios.items():
            errs, files = [], []
            for tl, a in items:
                r = scan(fixture, a, opts)
                n, secs = n + len(r), secs + len(a) / SR
                evs = events.detect_all(r.start_s, r.end_s, r.probs["event"], r.names["event"])
                errs += demo.minute_errors(synth.per_minute_truth(tl),
                                           density.minute_density(evs, len(a) * 1000 // SR))["minute_errors"]
                ref = tuple(Label(k.capitalize(), x / 1000, y / 1000) for k, spans in synth.kind_spans(tl).items()
                            for x, y in spans)
                files.append(FileEval(str(len(files)), len(a) / SR, ref,
                                      tuple(Label(e.label, e.start_s, e.end_s) for e in evs)))
            overall = score(files, ("Laughter", "Applause"))[-1]
            errs = np.array(errs)
            row += [f"{errs.max():.2f}", f"{np.percentile(errs, 90):.2f}", f"{overall.event_f1:.2f}",
                    f"{overall.onset_error_s:.2f}"]
        lfr = -(-((round(w * SR) - 400) // 160 + 1) // 6)      # encoder frames of one window (+ 4 queries)
        row[1:1] = [f"{n / secs:.2f}", f"{n / secs * (lfr + 4):.1f}"]
        if audio60 is not None:
            cost = best(lambda o=opts: scan(full, audio60, o), repeats=1)
            row += [f"{len(scan(full, audio60, opts)) / 60:.2f}", f"{60 / cost:.1f}"]
        rows.append(row)
    head = ["window/hop s", "windows per s (fixture)", "model frames per s"]
    for name in ("plain", "overlap"):
        head += [f"{name}: max minute err s", f"{name}: p90 err s", f"{name}: event F1", f"{name}: onset err s"]
    if audio60 is not None:
        head += ["windows per s (full-size, random)", "scan × realtime (full-size int8)"]
    return table(head, rows)


def batch_sweep(full, audio60: np.ndarray) -> str:
    rows = []
    for bs in (8, 16, 32, 64, 128, 256):
        s = best(lambda b=bs: scan(full, audio60, ScanOptions(window_s=0.5, hop_s=0.25, batch_size=b)), repeats=1)
        rows.append([bs, f"{60 / s:.1f}"])
    return table(["scan batch (windows)", "scan × realtime, 0.5/0.25 full grid"], rows)


def transcribe_sweep(full, audio60: np.ndarray) -> str:
    chunks = [(i * 15.0, audio60[i * 15 * SR:(i + 1) * 15 * SR]) for i in range(4)]
    rows = []
    for bs in (1, 2, 4, 8):
        s = best(lambda b=bs: transcribe(full, chunks, batch_size=b), repeats=1)
        rows.append([bs, f"{60 / s:.1f}"])
    return table(["transcribe batch (15 s chunks)", "× realtime"], rows)


def thread_sweep(full_dir: Path, audio60: np.ndarray) -> str:
    rows = []
    opts = ScanOptions(window_s=0.5, hop_s=0.25)
    for backend in ("onnx-int8", "torch"):
        for n in (1, 2):
            torch.set_num_threads(n)
            m = load_model(full_dir, device="cpu", backend=backend, threads=n)
            s = best(lambda mm=m: scan(mm, audio60[: 20 * SR], opts), repeats=1)
            rows.append([backend, n, f"{20 / s:.1f}"])
            del m
    torch.set_num_threads(2)
    return table(["backend", "threads", "scan × realtime (20 s, 0.5/0.25)"], rows)


def prefetch_sweep(full, audio60: np.ndarray) -> str:
    rows = []
    for prefetch in (False, True):
        from sensevoice_core import scan_many
        CLOCK.reset()
        s = best(lambda p=prefetch: scan_many(full, [audio60], ScanOptions(window_s=0.5, hop_s=0.25), prefetch=p),
                 repeats=1)
        rows.append(["on" if prefetch else "off", f"{60 / s:.1f}"])
    return table(["feature prefetch thread", "scan × realtime"], rows)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fullsize-dir", type=Path, default=DEFAULT_FULLSIZE)
    ap.add_argument("--windows-only", action="store_true",
                    help="Only the window/hop accuracy columns (fixture model; no full-size model).")
    args = ap.parse_args(argv)
    if args.windows_only:
        print("## Window and hop\n\n" + window_sweep(None, load_model("fixture", device="cpu"), None) + "\n")
        return
    if not (args.fullsize_dir / "model.pt").is_file():
        from bench import fullsize
        fullsize.build(args.fullsize_dir)
    audio60 = synth.render(synth.parse_timeline(talk_timeline(60.0, seed=7)))[0]
    fixture = load_model("fixture", device="cpu")
    full = load_model(args.fullsize_dir, device="cpu")
    full_torch = load_model(args.fullsize_dir, device="cpu", backend="torch")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    print("## Backends\n\n" + backends_sweep(full_torch, args.fullsize_dir, torch.get_num_threads()) + "\n")
    del full_torch
    print("## Window and hop\n\n" + window_sweep(full, fixture, audio60) + "\n")
    print("## Scan batch size\n\n" + batch_sweep(full, audio60) + "\n")
    print("## Transcription batch size\n\n" + transcribe_sweep(full, audio60) + "\n")
    print("## Feature prefetch\n\n" + prefetch_sweep(full, audio60) + "\n")
    print("## Threads\n\n" + thread_sweep(args.fullsize_dir, audio60) + "\n")


if __name__ == "__main__":
    main()
