"""Per-minute density of events, in integer milliseconds (minute m covers [60·m, 60·m + 60) s)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

from laughtrack.events import Event
from laughtrack.records import MinuteLabel, MinuteRow

MINUTE_MS = 60_000
WIDE = {"Laughter": "laughter", "Applause": "applause", "Speech": "speech"}   # label → MinuteRow prefix


def minute_count(duration_ms: int) -> int:
    """Minutes in a stream; the last may be shorter. A zero-length stream still has minute 0."""
    return max(1, -(-duration_ms // MINUTE_MS))


def union(spans_ms: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping or touching [start, end) spans merged, in time order."""
    out: list[tuple[int, int]] = []
    for a, b in sorted(spans_ms):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def overlaps(start_ms: int, end_ms: int) -> list[tuple[int, int]]:
    """(minute, milliseconds of [start_ms, end_ms) inside it) for every minute the span touches."""
    if end_ms <= start_ms:
        return []
    return [(m, min(end_ms, (m + 1) * MINUTE_MS) - max(start_ms, m * MINUTE_MS))
            for m in range(start_ms // MINUTE_MS, (end_ms - 1) // MINUTE_MS + 1)]


def minute_labels(events: list[Event], duration_ms: int) -> list[MinuteLabel]:
    """Long form: one row per (minute, label) with its seconds and onset count (onset minute)."""
    ms: dict[tuple[int, str], int] = defaultdict(int)
    count: dict[tuple[int, str], int] = defaultdict(int)
    last = minute_count(duration_ms) - 1
    for e in events:
        end = min(e.end_ms, duration_ms)
        for m, overlap in overlaps(e.start_ms, end):
            ms[m, e.label] += overlap
        count[min(e.start_ms // MINUTE_MS, last), e.label] += 1
    return [MinuteLabel(m, label, ms[m, label] / 1000, count[m, label]) for m, label in sorted(set(ms) | set(count))]


def minute_density(events: list[Event], duration_ms: int) -> list[MinuteRow]:
    """Wide form, every minute present: laughter/applause seconds and counts, speech, covered."""
    rows = [MinuteRow(m, 0.0, 0.0, 0, 0, 0.0, min(MINUTE_MS, duration_ms - m * MINUTE_MS) / 1000)
            for m in range(minute_count(duration_ms))]
    for label in minute_labels(events, duration_ms):
        name = WIDE.get(label.label)
        if name is None:
            continue
        changes = {f"{name}_s": label.seconds} | ({} if name == "speech" else {f"{name}_count": label.count})
        rows[label.minute] = replace(rows[label.minute], **changes)
    return rows
