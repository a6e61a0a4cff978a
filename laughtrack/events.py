"""Per-window probabilities → timed events, and speech events → transcription chunks.

All interval arithmetic is in integer milliseconds so that a boundary at 59.9999 s can never flip
minutes by float drift. Pure functions, no I/O.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np

# Event tags that name a sound; Event_UNK is the model's "none of these".
NOT_AN_EVENT = {"Event_UNK"}


@dataclass(frozen=True, slots=True)
class LabelRule:
    """How one label's slot probabilities become its events (overrides the defaults)."""

    label: str
    on: float
    off: float
    min_duration_s: float
    merge_gap_s: float
    edge: float = 0.0        # trim each run's edges to this fraction of its peak (0: no trim)


# Laughter and applause heard under speech share the one event slot with it: the fixture gives them
# 0.1-0.5 there, and 0.9+ alone. A low `on` finds them under speech; edges trimmed to half the
# event's peak keep the edges of a sound heard alone where a 0.5 threshold put them. Laughter is
# `laughtrack tune`'s choice on the fixture's accuracy + overlap sets (tools/tune_events.py);
# applause is tune's F1 with the edge trim added, which keeps its total seconds within 4% (tune's
# own pick, edge 0, ran 10% long on the accuracy set). bench/RESULTS.md, "Overlap". On the real
# model, tune them on labelled media of your own.
DEFAULT_RULES = (LabelRule("Applause", on=0.4, off=0.4, min_duration_s=0.25, merge_gap_s=2.0, edge=0.5),
                 LabelRule("Laughter", on=0.15, off=0.15, min_duration_s=0.25, merge_gap_s=2.0, edge=0.5))


@dataclass(frozen=True, slots=True)
class EventOptions:
    """How window probabilities become events: a default rule, per-label rules, and the name of the
    parameter set (`default`, or one saved by `laughtrack tune`; recorded in the analysis' params).

    The default rule (speech and the other labels) was picked by `tools/tune_events.py` on the
    accuracy set: on = off = 0.5; min_duration_s and merge_gap_s are kept small to drop one-slot
    flickers. Laughter and applause have their own rules (DEFAULT_RULES).
    """

    on: float = 0.5
    off: float = 0.5
    min_duration_s: float = 0.25
    merge_gap_s: float = 0.5
    edge: float = 0.0
    labels: tuple[LabelRule, ...] = DEFAULT_RULES
    name: str = "default"

    def rule(self, label: str) -> LabelRule:
        """The rule of `label`: its own if set, else the defaults."""
        for r in self.labels:
            if r.label == label:
                return r
        return LabelRule(label, self.on, self.off, self.min_duration_s, self.merge_gap_s, self.edge)

    def with_rules(self, rules: list[LabelRule], name: str) -> EventOptions:
        """These options with `rules` replacing the rules of their labels, under a new name."""
        keep = tuple(r for r in self.labels if r.label not in {n.label for n in rules})
        return replace(self, labels=keep + tuple(sorted(rules, key=lambda r: r.label)), name=name)

    def validate(self) -> EventOptions:
        for r in (self.rule(""), *self.labels):
            where = f" ({r.label})" if r.label else ""
            if not 0 < r.off <= r.on < 1:
                raise ValueError(f"need 0 < off <= on < 1{where}, got on={r.on}, off={r.off}")
            if r.min_duration_s < 0 or r.merge_gap_s < 0:
                raise ValueError(f"min_duration_s and merge_gap_s must be >= 0{where}")
            if not 0 <= r.edge < 1:
                raise ValueError(f"edge must be in [0, 1){where}, got {r.edge}")
        if not self.name or not all(c.isalnum() or c in "-_." for c in self.name):
            raise ValueError(f"event parameter set name {self.name!r}: use letters, digits, - _ .")
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> EventOptions:
        rules = tuple(LabelRule(**r) for r in data.get("labels", ()))
        return cls(**{**data, "labels": rules}).validate()


@dataclass(frozen=True, slots=True)
class Event:
    """One timed event; times in integer milliseconds."""

    label: str
    start_ms: int
    end_ms: int
    peak_p: float
    mean_p: float

    @property
    def start_s(self) -> float:
        return self.start_ms / 1000

    @property
    def end_s(self) -> float:
        return self.end_ms / 1000


def slot_probabilities(start_ms: np.ndarray, end_ms: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cut the timeline at every window edge; each slot's p is the mean over the windows covering it.

    Returns (edges_ms [S+1], p_slot [S]). With 1 s windows every 0.5 s each slot is 0.5 s wide and
    covered by two windows, so an event edge lands within one slot of the truth.
    """
    if len(start_ms) == 0:
        return np.zeros(1, np.int64), np.zeros(0, np.float64)
    edges = np.unique(np.concatenate([start_ms, end_ms]))
    diff = np.zeros(len(edges), np.float64)
    count = np.zeros(len(edges), np.int64)
    a = np.searchsorted(edges, start_ms)
    b = np.searchsorted(edges, end_ms)
    np.add.at(diff, a, p)
    np.add.at(diff, b, -p)
    np.add.at(count, a, 1)
    np.add.at(count, b, -1)
    total, n = np.cumsum(diff)[:-1], np.cumsum(count)[:-1]
    return edges, np.where(n > 0, total / np.maximum(n, 1), 0.0)


def detect(label: str, edges_ms: np.ndarray, p_slot: np.ndarray, options: EventOptions | LabelRule) -> list[Event]:
    """Hysteresis over slot probabilities → runs, their edges trimmed to `edge` x their peak,
    merged across short gaps, minimum-length events of one label."""
    rule = options.rule(label) if isinstance(options, EventOptions) else options
    runs = [_trim(run, p_slot, rule.edge) for run in _runs(p_slot, rule.on, rule.off)]
    merged: list[list[int]] = []
    for run in runs:
        if merged and edges_ms[run[0]] - edges_ms[merged[-1][1] + 1] <= rule.merge_gap_s * 1000:
            merged[-1][1] = run[1]
        else:
            merged.append(run)
    events = []
    for first, last in merged:
        start, end = int(edges_ms[first]), int(edges_ms[last + 1])
        if end - start < rule.min_duration_s * 1000:
            continue
        widths = np.diff(edges_ms[first:last + 2])
        p = p_slot[first:last + 1]
        events.append(Event(label, start, end, float(p.max()), float(np.average(p, weights=widths))))
    return events


def _runs(p_slot: np.ndarray, on: float, off: float) -> list[list[int]]:
    """[first_slot, last_slot] of each stretch that rises to `on` and stays at `off` or above."""
    runs: list[list[int]] = []
    active = False
    for i, p in enumerate(p_slot):
        if active and p >= off or not active and p >= on:
            if active:
                runs[-1][1] = i
            else:
                runs.append([i, i])
            active = True
        else:
            active = False
    return runs


def _trim(run: list[int], p_slot: np.ndarray, edge: float) -> list[int]:
    """The run without its leading and trailing slots under `edge` x the run's peak. A sound that
    fills whole windows peaks near 1 and its edges land where it fills half a window, as with a
    0.5 threshold; one heard under speech peaks lower, and its edges scale with it."""
    if edge <= 0:
        return run
    first, last = run
    keep = np.flatnonzero(p_slot[first:last + 1] >= edge * p_slot[first:last + 1].max())
    return [first + int(keep[0]), first + int(keep[-1])]


def detect_all(start_s: np.ndarray, end_s: np.ndarray, event_probs: np.ndarray, labels: tuple[str, ...],
               options: EventOptions = EventOptions()) -> list[Event]:
    """Events of every label (except Event_UNK) from per-window event-family probabilities."""
    options = options.validate()
    start_ms = np.round(np.asarray(start_s) * 1000).astype(np.int64)
    end_ms = np.round(np.asarray(end_s) * 1000).astype(np.int64)
    events = []
    for j, label in enumerate(labels):
        if label in NOT_AN_EVENT:
            continue
        edges, p_slot = slot_probabilities(start_ms, end_ms, event_probs[:, j])
        events.extend(detect(label, edges, p_slot, options))
    return sorted(events, key=lambda e: (e.start_ms, e.label))


def speech_chunks(events: list[Event], duration_ms: int, pad_ms: int = 200, join_gap_ms: int = 1000,
                  max_ms: int = 15_000) -> list[tuple[int, int]]:
    """Speech events padded, joined across short pauses, and split evenly into chunks ≤ max_ms.

    15 s, the seed's merge_length_s: on the full-size model (int8) 15 s chunks transcribe 1.3x
    faster than 30 s ones (attention grows with the square of the length; bench/RESULTS.md)."""
    spans: list[list[int]] = []
    for e in sorted((e for e in events if e.label == "Speech"), key=lambda e: e.start_ms):
        a, b = max(0, e.start_ms - pad_ms), min(duration_ms, e.end_ms + pad_ms)
        if spans and a - spans[-1][1] <= join_gap_ms:
            spans[-1][1] = max(spans[-1][1], b)
        else:
            spans.append([a, b])
    chunks = []
    for a, b in spans:
        if b <= a:          # a speech event at or past the end of the audio: nothing to transcribe
            continue
        pieces = -(-(b - a) // max_ms)
        bounds = [a + (b - a) * k // pieces for k in range(pieces + 1)]
        chunks.extend(zip(bounds[:-1], bounds[1:]))
    return chunks
