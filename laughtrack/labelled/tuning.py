"""Choosing per-label event rules from labelled media (`laughtrack tune`).

The model step is not repeated: each file's stored window probabilities are turned into events
again under candidate rules, and each label's rule is chosen to maximise its event-based F1 (then
the smaller per-minute error) against the labels. A label's events depend on its rule alone, so
labels are tuned one at a time: thresholds first (on, off, edge), then the time rules (minimum
duration, gap merge) under the best thresholds. Pure: windows and labels in, options out.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from laughtrack import events as events_mod
from laughtrack.labelled.evaluation import COLLAR_S, FileEval, LabelScore, score
from laughtrack.events import EventOptions, LabelRule
from laughtrack.labelled.labels import Label

ONS = (0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7)
OFF_BELOW = (0.0, 0.1, 0.2)          # off = on - this (hysteresis), never below 0.1
MIN_DURATIONS = (0.0, 0.25, 0.5, 1.0)
MERGE_GAPS = (0.0, 0.5, 1.0, 2.0)
EDGES = (0.0, 0.5)                    # edges where p is half the event's peak, or at `off`


@dataclass(frozen=True, slots=True)
class Windows:
    """One labelled file's stored scan: window edges and the event-family probabilities."""

    path: str
    duration_s: float
    reference: tuple[Label, ...]
    start_s: np.ndarray
    end_s: np.ndarray
    probs: dict[str, np.ndarray]      # event tag → P per window

    def estimate(self, options: EventOptions | LabelRule, labels: tuple[str, ...]) -> FileEval:
        start_ms = np.round(self.start_s * 1000).astype(np.int64)
        end_ms = np.round(self.end_s * 1000).astype(np.int64)
        found = []
        for label in labels:
            edges, p_slot = events_mod.slot_probabilities(start_ms, end_ms, self.probs[label])
            found += [Label(e.label, e.start_s, e.end_s) for e in events_mod.detect(label, edges, p_slot, options)]
        return FileEval(self.path, self.duration_s, self.reference, tuple(found))


@dataclass(frozen=True, slots=True)
class Tuned:
    """The chosen options and the scores before (the options it started from) and after."""

    options: EventOptions
    before: list[LabelScore]
    after: list[LabelScore]

    @staticmethod
    def mean_event_f1(scores: list[LabelScore]) -> float:
        values = [0.0 if math.isnan(s.event_f1) else s.event_f1 for s in scores if s.label != "overall"]
        return float(np.mean(values)) if values else 0.0


def tune(files: list[Windows], base: EventOptions, labels: tuple[str, ...], name: str,
         collar_s: float = COLLAR_S) -> Tuned:
    """Per-label rules that maximise event F1 on `files`, starting from (and never worse than) `base`."""
    rules = [_tune_label(files, base.rule(label), collar_s) for label in labels]
    chosen = base.with_rules(rules, name).validate()
    before = score([f.estimate(base, labels) for f in files], labels, collar_s)
    after = score([f.estimate(chosen, labels) for f in files], labels, collar_s)
    return Tuned(chosen, before, after)


def _tune_label(files: list[Windows], start: LabelRule, collar_s: float, rounds: int = 2) -> LabelRule:
    """Coordinate ascent: thresholds under the current time rules, then time rules under the
    current thresholds, twice (a low threshold often pays only with a longer gap merge)."""
    label = start.label
    best, best_key = start, _key(files, start, collar_s)
    thresholds = [(on, round(on - below, 2)) for on, below in itertools.product(ONS, OFF_BELOW)
                  if on - below >= 0.1 - 1e-9]
    for _ in range(rounds):
        for (on, off), edge in itertools.product(thresholds, EDGES):
            rule = LabelRule(label, on, off, best.min_duration_s, best.merge_gap_s, edge)
            best, best_key = _better(files, rule, collar_s, best, best_key)
        for min_d, gap in itertools.product(MIN_DURATIONS, MERGE_GAPS):
            rule = LabelRule(label, best.on, best.off, min_d, gap, best.edge)
            best, best_key = _better(files, rule, collar_s, best, best_key)
    return best


def _better(files, rule, collar_s, best, best_key):
    key = _key(files, rule, collar_s)
    return (rule, key) if key > best_key else (best, best_key)


def _key(files: list[Windows], rule: LabelRule, collar_s: float) -> tuple[float, float]:
    """(event F1, -per-minute error) of one label's rule: larger is better."""
    s = score([f.estimate(rule, (rule.label,)) for f in files], (rule.label,), collar_s)[0]
    f1 = 0.0 if math.isnan(s.event_f1) else s.event_f1
    err = s.minute_error_s if not math.isnan(s.minute_error_s) else 0.0
    return round(f1, 6), -round(err, 6)
