"""`laughtrack eval`, `tune` and `export`: labelled media against the stored results.

Both eval and tune first run the analysis flow on the labelled media (what is already analysed is
answered from the store), then work from the store alone: eval scores the stored events, tune
re-detects events from the stored window probabilities under candidate rules.
"""

from __future__ import annotations

import glob
import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
from rich.table import Table

from laughtrack import media
from laughtrack.config import RunConfig, video_id
from laughtrack.errors import LaughtrackError
from laughtrack.evaluation import FileEval, LabelScore, score
from laughtrack.labels import Label, LabelSet
from laughtrack.store import Store, open_store, schema
from laughtrack.tuning import Tuned, Windows, tune
from laughtrack_cli.output import console, print_wide

SCORE_COLUMNS = (("n_ref", "ref", "{}"), ("n_est", "found", "{}"), ("segment_precision", "seg P", "{:.2f}"),
                 ("segment_recall", "seg R", "{:.2f}"), ("segment_f1", "seg F1", "{:.2f}"),
                 ("event_precision", "evt P", "{:.2f}"), ("event_recall", "evt R", "{:.2f}"),
                 ("event_f1", "evt F1", "{:.2f}"), ("onset_error_s", "onset err s", "{:.2f}"),
                 ("offset_error_s", "offset err s", "{:.2f}"), ("minute_error_s", "min err s", "{:.2f}"),
                 ("minute_error_max_s", "max min err s", "{:.2f}"))


def analysed(label_set: LabelSet, config: RunConfig, run_analysis, stored_first: bool = False
             ) -> dict[str, tuple[str, float]]:
    """media path → (analysis_id of its first audio stream, duration_s), analysing what is new.
    Labels mark a file's first audio stream. With `stored_first` (no model or event set was asked
    for), a file already analysed is scored by its latest analysis, so no model is needed when every
    file is. A file that cannot be analysed is a LaughtrackError naming it (scores need every file)."""
    store = open_store(config.store)
    found = _latest(store, list(label_set.files)) if stored_first else {}
    todo = [p for p in label_set.files if p not in found]
    if todo:
        result = run_analysis([glob.escape(p) for p in todo], replace(config, stream="0"))  # `[2019]` is no glob
        if result.failures:
            raise LaughtrackError("; ".join(f.message for f in result.failures))
        found |= {str(Path(o.path).resolve()): o.analysis_id for o in result.analysed + result.skipped}
    durations = store.durations(list(found.values()))
    return {path: (aid, durations[aid]) for path, aid in found.items()}


def _latest(store: Store, paths: list[str]) -> dict[str, str]:
    """path → the latest analysis of its first audio stream, for the files the store has."""
    if not store.exists():
        return {}
    latest = {(t["video_id"], t["stream_index"]): t["analysis_id"] for t in store.report_targets()}
    out = {}
    for path in paths:
        try:
            vid = video_id(media.content_sha256(Path(path)))
        except LaughtrackError:
            continue                       # unreadable: the analysis says why
        if (vid, 0) in latest:
            out[path] = latest[(vid, 0)]
    return out


def evaluate(label_set: LabelSet, config: RunConfig, run_analysis, collar_s: float,
             stored_first: bool = False) -> list[LabelScore]:
    store = open_store(config.store)
    files = []
    for path, (aid, duration) in analysed(label_set, config, run_analysis, stored_first).items():
        found = tuple(Label(e["label"], e["start_s"], e["end_s"]) for e in store.events(aid))
        files.append(FileEval(path, duration, tuple(label_set.files[path]), found))
    return score(files, _labels(label_set), collar_s)


def tune_events(label_set: LabelSet, config: RunConfig, run_analysis, name: str, collar_s: float) -> Tuned:
    store = open_store(config.store)
    files = [_windows(store, path, aid, duration, label_set.files[path])
             for path, (aid, duration) in analysed(label_set, config, run_analysis).items()]
    labels = tuple(t for t in label_set.labels if t in ("Laughter", "Applause"))
    if not labels:
        raise LaughtrackError(f"{label_set.source}: no laughter or applause labels to tune on")
    return tune(files, config.params.events, labels, name, collar_s)     # other labels keep their rules


def save(config: RunConfig, tuned: Tuned, source: str) -> None:
    open_store(config.store).save_event_set(tuned.options.name, json.dumps(tuned.options.to_dict(), sort_keys=True),
                                            source, Tuned.mean_event_f1(tuned.before),
                                            Tuned.mean_event_f1(tuned.after))


def _labels(label_set: LabelSet) -> tuple[str, ...]:
    """The labels to score: laughter and applause always, speech when the labels mark it."""
    return ("Laughter", "Applause") + (("Speech",) if "Speech" in label_set.labels else ())


def _windows(store: Store, path: str, aid: str, duration: float, reference: list[Label]) -> Windows:
    names, rows = store.window_probs(aid)
    cols = np.array(rows, dtype=np.float64).reshape(len(rows), len(names))
    by_name = dict(zip(names, cols.T))
    probs = {tag: by_name[col] for tag, col in schema.EVENT_COLUMNS.items()}
    return Windows(path, duration, tuple(reference), by_name["start_s"], by_name["end_s"], probs)


# --- printing ---------------------------------------------------------------------------------

def score_table(scores: list[LabelScore], title: str) -> Table:
    table = Table(title=title)
    table.add_column("label")
    for _, head, _ in SCORE_COLUMNS:
        table.add_column(head, justify="right")
    for s in scores:
        table.add_row(s.label, *(_cell(getattr(s, key), fmt) for key, _, fmt in SCORE_COLUMNS))
    return table


def scores_json(scores: list[LabelScore]) -> str:
    return json.dumps({s.label: s.to_json() for s in scores}, indent=1)


def tuned_table(tuned: Tuned, base_name: str) -> Table:
    table = Table(title=f"event rules: {base_name} → {tuned.options.name}")
    for col in ("label", "on", "off", "edge", "min s", "gap s", "evt F1 before", "evt F1 after", "min err s before",
                "min err s after"):
        table.add_column(col, justify="right")
    before = {s.label: s for s in tuned.before}
    for s in tuned.after:
        if s.label == "overall":
            continue
        r, b = tuned.options.rule(s.label), before[s.label]
        table.add_row(s.label, f"{r.on:.2f}", f"{r.off:.2f}", f"{r.edge:.2f}", f"{r.min_duration_s:.2f}",
                      f"{r.merge_gap_s:.2f}",
                      _cell(b.event_f1, "{:.2f}"), _cell(s.event_f1, "{:.2f}"),
                      _cell(b.minute_error_s, "{:.2f}"), _cell(s.minute_error_s, "{:.2f}"))
    return table


def _cell(value, fmt: str) -> str:
    return "n/a" if isinstance(value, float) and math.isnan(value) else fmt.format(value)


def print_tuned(tuned: Tuned, base_name: str) -> None:
    print_wide(tuned_table(tuned, base_name))
    console.print(f"mean event F1 {Tuned.mean_event_f1(tuned.before):.3f} → {Tuned.mean_event_f1(tuned.after):.3f}",
                  highlight=False)
