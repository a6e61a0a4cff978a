"""Sweep the event-detection thresholds on the accuracy set with the fixture model.

    python tools/tune_events.py            # prints one line per setting, best first

Scans each timeline once (the model step), then re-runs only the pure events → density step per
setting, scoring per-minute laughter/applause error against the synthesizer's truth.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from laughtrack import demo, density, events, synth  # noqa: E402
from sensevoice_core import ScanOptions, load_model, scan  # noqa: E402


def main() -> None:
    model = load_model("fixture", device="cpu")
    audios = {name: (tl, synth.render(tl)[0]) for name, tl in demo.accuracy_timelines().items()}
    rows = []
    for window, hop in WINDOWS:
        scans = [(tl, scan(model, audio, ScanOptions(window_s=window, hop_s=hop)), len(audio) * 1000 // 16_000)
                 for tl, audio in audios.values()]
        rows += sweep(scans, (window, hop))
    rows.sort(key=lambda r: (r[0], r[1], -r[3]), reverse=True)
    print("share≤2s  max_err  p90_err  max_total_rel  window/hop  options")
    for share, _, opts, mx, p90, tot, wh in rows[:25]:
        print(f"{share:8.3f} {mx:8.2f} {p90:8.2f} {tot:13.3f}  {wh}  {opts}")


WINDOWS = ((1.0, 0.5), (1.0, 0.25), (0.5, 0.25))


def sweep(scans, wh):
    rows = []
    for on, off, min_d, gap in itertools.product((0.5, 0.6, 0.7, 0.8), (0.35, 0.5, 0.6, 0.7), (0.0, 0.25), (0.0, 0.5)):
        if off > on:
            continue
        opts = events.EventOptions(on=on, off=off, min_duration_s=min_d, merge_gap_s=gap)
        errs, totals = [], []
        for tl, result, dur_ms in scans:
            evs = events.detect_all(result.start_s, result.end_s, result.probs["event"], result.names["event"], opts)
            score = demo.minute_errors(synth.per_minute_truth(tl), density.minute_density(evs, dur_ms))
            errs += score["minute_errors"]
            totals += list(score["total_rel_error"].values())
        errs = np.array(errs)
        rows.append((float(np.mean(errs <= 2.0)), -max(totals), opts, errs.max(), np.percentile(errs, 90),
                     max(totals), wh))
    return rows


if __name__ == "__main__":
    main()
