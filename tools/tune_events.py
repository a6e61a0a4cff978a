"""The sweep behind the default event rules: `laughtrack tune` on the synthetic sets, in memory.

    python tools/tune_events.py            # prints before/after per label and the chosen rules

Scans the accuracy set and the overlap set once with the default windows (fixture model), then
runs laughtrack.labelled.tuning over the stored-window form of those scans against the synthesizer's own
labels, starting from one rule for every label, and prints the scores and per-minute errors of
that start, of the tuned rules and of DEFAULT_RULES (laughtrack/events.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import timelines  # noqa: E402 — tools/timelines.py: the accuracy and overlap sets
from laughtrack import density, events  # noqa: E402
from laughtrack.synthetic import synth  # noqa: E402
from laughtrack.synthetic import demo  # noqa: E402
from laughtrack.params import AnalysisParams  # noqa: E402
from laughtrack.events import EventOptions  # noqa: E402
from laughtrack.labelled.labels import Label  # noqa: E402
from laughtrack.labelled.evaluation import score  # noqa: E402
from laughtrack.labelled.tuning import Tuned, Windows, tune  # noqa: E402
from sensevoice_core import load_model, scan  # noqa: E402

LABELS = ("Laughter", "Applause")


def main() -> None:
    model = load_model("fixture", device="cpu")
    opts = AnalysisParams().scan_options()
    files, truths = [], []
    for name, tl in (timelines.accuracy_timelines() | timelines.overlap_timelines()).items():
        audio = synth.render(tl)[0]
        r = scan(model, audio, opts)
        ref = tuple(Label(k.capitalize(), a / 1000, b / 1000) for k, spans in synth.kind_spans(tl).items()
                    for a, b in spans)
        probs = {t: r.probs["event"][:, j] for j, t in enumerate(r.names["event"])}
        files.append(Windows(name, len(audio) / 16_000, ref, np.asarray(r.start_s), np.asarray(r.end_s), probs))
        truths.append(synth.per_minute_truth(tl))
    start = EventOptions(labels=())         # one rule for every label: the search is not circular
    tuned = tune(files, start, LABELS, "swept")
    plain = len(timelines.accuracy_timelines())
    for title, options, scores in (("one rule (on = off = 0.5)", start, tuned.before),
                                   ("tuned", tuned.options, tuned.after), ("DEFAULT_RULES", EventOptions(), None)):
        scores = scores or score([f.estimate(options, LABELS) for f in files], LABELS)
        print(f"{title}: mean event F1 {Tuned.mean_event_f1(scores):.3f}")
        for part, sl in (("accuracy set", slice(0, plain)), ("overlap set", slice(plain, None))):
            errs = minute_errors(files[sl], truths[sl], options)
            print(f"  {part}: per-minute laughter/applause error max {errs.max():.2f} s, "
                  f"p90 {np.percentile(errs, 90):.2f} s, share <= 2 s {np.mean(errs <= 2):.3f}")
        for s in scores:
            print(f"  {s.label:9s} event F1 {s.event_f1:.3f} P {s.event_precision:.3f} R {s.event_recall:.3f} "
                  f"onset err {s.onset_error_s:.2f} s, minute err mean {s.minute_error_s:.2f} max {s.minute_error_max_s:.2f}")
    for label in LABELS:
        print(f"  {tuned.options.rule(label)}")


def minute_errors(files: list[Windows], truths: list[list[dict]], options: EventOptions) -> np.ndarray:
    errs = []
    for f, truth in zip(files, truths):
        probs = np.stack([f.probs[t] for t in f.probs], axis=1)
        evs = events.detect_all(f.start_s, f.end_s, probs, tuple(f.probs), options)
        errs += demo.minute_errors(truth, density.minute_density(evs, round(f.duration_s * 1000)))["minute_errors"]
    return np.array(errs)


if __name__ == "__main__":
    main()
