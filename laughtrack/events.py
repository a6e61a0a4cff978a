"""Per-window probabilities → timed events, and speech events → transcription chunks.

All interval arithmetic is in integer milliseconds so that a boundary at 59.9999 s can never flip
minutes by float drift. Pure functions, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Event tags that name a sound; Event_UNK is the model's "none of these".
NOT_AN_EVENT = {"Event_UNK"}


@dataclass(frozen=True, slots=True)
class EventOptions:
    """How window probabilities become events.

    Picked by `tools/tune_events.py` (fixture model, accuracy set with boundaries off the window
    grid): with 0.5 s windows every 0.25 s, on = off = 0.5 gave the smallest per-minute error
    (max 0.40 s, p90 0.25 s). Hysteresis (off < on) made events longer, because a loud laugh or
    clap dominates a window it only partly fills; min_duration_s and merge_gap_s in [0, 0.5]
    changed nothing on that set and are kept small to drop one-slot flickers.
    """

    on: float = 0.5
    off: float = 0.5
    min_duration_s: float = 0.25
    merge_gap_s: float = 0.5

    def validate(self) -> EventOptions:
        if not 0 < self.off <= self.on < 1:
            raise ValueError(f"need 0 < off <= on < 1, got on={self.on}, off={self.off}")
        if self.min_duration_s < 0 or self.merge_gap_s < 0:
            raise ValueError("min_duration_s and merge_gap_s must be >= 0")
        return self


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


def detect(label: str, edges_ms: np.ndarray, p_slot: np.ndarray, options: EventOptions) -> list[Event]:
    """Hysteresis over slot probabilities → merged, minimum-length events of one label."""
    runs: list[list[int]] = []   # [first_slot, last_slot]
    active = False
    for i, p in enumerate(p_slot):
        if active and p >= options.off or not active and p >= options.on:
            if active:
                runs[-1][1] = i
            else:
                runs.append([i, i])
            active = True
        else:
            active = False
    merged: list[list[int]] = []
    for run in runs:
        if merged and edges_ms[run[0]] - edges_ms[merged[-1][1] + 1] <= options.merge_gap_s * 1000:
            merged[-1][1] = run[1]
        else:
            merged.append(run)
    events = []
    for first, last in merged:
        start, end = int(edges_ms[first]), int(edges_ms[last + 1])
        if end - start < options.min_duration_s * 1000:
            continue
        widths = np.diff(edges_ms[first:last + 2])
        p = p_slot[first:last + 1]
        events.append(Event(label, start, end, float(p.max()), float(np.average(p, weights=widths))))
    return events


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
        pieces = -(-(b - a) // max_ms)
        bounds = [a + (b - a) * k // pieces for k in range(pieces + 1)]
        chunks.extend(zip(bounds[:-1], bounds[1:]))
    return chunks
