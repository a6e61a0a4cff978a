"""The CPU side of a GPU run: how fast one core decodes and computes features, so how many cores
a GPU at N× realtime needs to be fed.

    python -m bench.ceiling [--seconds 300] [--json FILE]

Decode: ffmpeg extracting 16 kHz mono PCM from an mp4 (what the extract step runs), one process
per core side by side. Features: fbank → LFR → CMVN of the scan's windows (0.6 s every 0.3 s,
the full grid: an upper bound on the adaptive scan's) and of the transcript chunks, in one thread.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

SR = 16_000
GPU_TARGET_X = 2000.0


def decode_rate(video: Path, seconds: float, processes: int, work: Path) -> float:
    """Audio seconds decoded per wall second with `processes` ffmpeg processes side by side."""
    from laughtrack import media
    from laughtrack.media import probe_and_hash

    _, _, state = probe_and_hash(video)

    def one(i: int) -> None:
        media.extract_pcm(video, 0, work / f"{i}.s16", expect=state)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(processes) as pool:
        list(pool.map(one, range(processes)))
    return processes * seconds / (time.perf_counter() - t0)


def feature_rates(audio: np.ndarray) -> dict[str, float]:
    """× realtime of one core: scan windows (0.6/0.3 full grid), 15 s chunks, the whole stream once."""
    from sensevoice_core import load_model
    frontend = load_model("fixture", device="cpu").frontend
    seconds = len(audio) / SR
    shapes = {"scan windows 0.6 s / 0.3 s": [audio[s:s + 9600] for s in range(0, len(audio) - 9600, 4800)],
              "transcript chunks 15 s": [audio[s:s + 15 * SR] for s in range(0, len(audio), 15 * SR)],
              "whole stream once": [audio]}
    out = {}
    for name, pieces in shapes.items():
        t0 = time.perf_counter()
        for piece in pieces:
            frontend(piece)
        out[name] = seconds / (time.perf_counter() - t0)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=300.0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    from bench.__main__ import talk_timeline
    from laughtrack import media
    from laughtrack.synthetic import synth
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="laughtrack-ceiling-") as tmp:
        work = Path(tmp)
        audio = synth.render(synth.parse_timeline(talk_timeline(args.seconds, 7)))[0]
        video = work / "talk.mp4"
        media.write_media(audio, video)
        decode = {n: decode_rate(video, args.seconds, n, work) for n in sorted({1, cores})}
    features = feature_rates(audio)
    per_core = {"decode": decode[1], **features}
    scan_plus_chunks = 1 / (1 / features["scan windows 0.6 s / 0.3 s"] + 1 / features["transcript chunks 15 s"])
    per_core["features (scan grid + chunks)"] = scan_plus_chunks
    both = 1 / (1 / decode[1] + 1 / scan_plus_chunks)
    out = {"cores": cores, "audio_s": args.seconds, "per_core_x_realtime": per_core,
           "decode_all_cores_x_realtime": decode[cores], "decode_plus_features_per_core_x_realtime": both,
           "cores_for_2000x": GPU_TARGET_X / both, "this_machine_ceiling_x_realtime": both * cores}
    print(json.dumps({k: (round(v, 1) if isinstance(v, float) else
                          {a: round(b, 1) for a, b in v.items()} if isinstance(v, dict) else v)
                      for k, v in out.items()}, indent=1))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
