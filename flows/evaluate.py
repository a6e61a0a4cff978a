"""Labelled media against laughtrack, as flows the CLI (`eval`, `tune`) calls:

    labels ─► analyse what is new (analyze-batch) ─┬─► score the stored events           (evaluate)
                                                   └─► re-detect under candidate rules ─► save   (tune)

Both work from the results store once the media is analysed: eval scores the stored events, tune
re-detects events from the stored window probabilities. Labels mark a file's first audio stream.
"""

from __future__ import annotations

import glob
import json
from dataclasses import dataclass, replace
from pathlib import Path

from prefect import flow

from laughtrack import media
from laughtrack.config import RunConfig
from laughtrack.errors import LaughtrackError
from laughtrack.identity import video_id
from laughtrack.labelled.evaluation import FileEval, LabelScore, collar_for, score
from laughtrack.labelled.labels import Label, LabelSet, read
from laughtrack.labelled.tuning import Tuned, Windows, tune
from laughtrack.store import Store, open_store


@dataclass(frozen=True)
class Evaluation:
    """What `evaluate` found: the scores per label, and the label file's own account."""

    scores: list[LabelScore]
    labels: LabelSet
    collar_s: float                 # the event collar scored with (widened for caption labels)


@flow(name="evaluate")
def evaluate(label_files: list[str], config: RunConfig, collar_s: float = 0.5, stored_first: bool = False) -> Evaluation:
    """Score the stored events of the labelled media against their labels (sed_eval), analysing
    what is not analysed yet. `stored_first` (no model or event set was asked for): a file already
    analysed is scored by its latest analysis, so no model is needed when every file is."""
    label_set = read([Path(p) for p in label_files])
    store = open_store(config.store)
    files = [FileEval(path, duration, tuple(label_set.files[path]),
                      tuple(Label(e.label, e.start_s, e.end_s) for e in store.events(aid)))
             for path, (aid, duration) in analysed(label_set, config, store, stored_first).items()]
    collar_s = collar_for(label_set.coarse, collar_s)
    return Evaluation(score(files, scored_labels(label_set), collar_s), label_set, collar_s)


@flow(name="tune")
def tune_rules(label_files: list[str], config: RunConfig, name: str, collar_s: float = 0.5) -> Tuned:
    """Per-label event rules that maximise event F1 on the labelled media, from the stored window
    probabilities (no model work twice); saved under `name` in the results store."""
    label_set = read([Path(p) for p in label_files])
    store = open_store(config.store)
    files = [_windows(store, path, aid, duration, label_set.files[path])
             for path, (aid, duration) in analysed(label_set, config, store).items()]
    labels = tuple(t for t in label_set.labels if t in ("Laughter", "Applause"))
    if not labels:
        raise LaughtrackError(f"{label_set.source}: no laughter or applause labels to tune on")
    # other labels keep their rules
    tuned = tune(files, config.params.events, labels, name, collar_for(label_set.coarse, collar_s))
    store.save_event_set(name, json.dumps(tuned.options.to_dict(), sort_keys=True), label_set.source,
                         Tuned.mean_event_f1(tuned.before), Tuned.mean_event_f1(tuned.after))
    return tuned


def analysed(label_set: LabelSet, config: RunConfig, store: Store, stored_first: bool = False
             ) -> dict[str, tuple[str, float]]:
    """media path → (analysis_id of its first audio stream, duration_s), analysing what is new. A
    file that cannot be analysed is a LaughtrackError naming it (scores need every file)."""
    from flows.analyze import analyze_batch
    found = latest(store, list(label_set.files)) if stored_first else {}
    todo = [p for p in label_set.files if p not in found]
    if todo:
        result = analyze_batch(paths=[glob.escape(p) for p in todo], config=replace(config, stream="0"))
        if result.failures:
            raise LaughtrackError("; ".join(f.message for f in result.failures))
        found |= {str(Path(o.path).resolve()): o.analysis_id for o in result.analysed + result.skipped}
    durations = store.durations(list(found.values()))
    return {path: (aid, durations[aid]) for path, aid in found.items()}


def latest(store: Store, paths: list[str]) -> dict[str, str]:
    """path → the latest analysis of its first audio stream, for the files the store has."""
    if not store.exists():
        return {}
    targets = {(t.video_id, t.stream_index): t.analysis_id for t in store.report_targets()}
    out = {}
    for path in paths:
        try:
            vid = video_id(media.content_sha256(Path(path)))
        except LaughtrackError:
            continue                       # unreadable: the analysis says why
        if (vid, 0) in targets:
            out[path] = targets[(vid, 0)]
    return out


def scored_labels(label_set: LabelSet) -> tuple[str, ...]:
    """The labels to score: laughter and applause always, speech and music when the labels mark them."""
    return ("Laughter", "Applause") + tuple(t for t in ("Speech", "BGM") if t in label_set.labels)


def _windows(store: Store, path: str, aid: str, duration: float, reference: list[Label]) -> Windows:
    w = store.window_probs(aid)
    return Windows(path, duration, tuple(reference), w.start_s, w.end_s, w.probs)
