"""The embedded demo timeline and the window-vs-truth comparison the demo prints."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from laughtrack.synth import Segment, Timeline, parse_timeline

# ~3 minutes that exercise what stock wrappers get wrong: events crossing minute boundaries,
# back-to-back events, a 0.5 s laugh, laughter and applause after the last speech, and a duration
# that is not a multiple of 60 s.
DEMO_TIMELINE = {
    "duration_s": 185.0,
    "seed": 7,
    "segments": [
        {"start_s": 0.0, "end_s": 12.5, "kind": "speech"},
        {"start_s": 12.5, "end_s": 16.0, "kind": "applause"},
        {"start_s": 17.0, "end_s": 40.0, "kind": "speech"},
        {"start_s": 40.0, "end_s": 43.0, "kind": "laughter"},
        {"start_s": 43.5, "end_s": 57.0, "kind": "speech"},
        {"start_s": 57.5, "end_s": 63.5, "kind": "laughter"},
        {"start_s": 63.5, "end_s": 66.0, "kind": "applause"},
        {"start_s": 67.0, "end_s": 95.0, "kind": "speech"},
        {"start_s": 95.0, "end_s": 95.5, "kind": "laughter"},
        {"start_s": 96.0, "end_s": 118.0, "kind": "speech"},
        {"start_s": 118.5, "end_s": 122.5, "kind": "applause"},
        {"start_s": 123.0, "end_s": 150.0, "kind": "speech"},
        {"start_s": 150.0, "end_s": 154.0, "kind": "laughter"},
        {"start_s": 160.0, "end_s": 168.0, "kind": "applause"},
        {"start_s": 172.0, "end_s": 176.5, "kind": "laughter"},
    ],
}
EVENT_OF_KIND = {"speech": "Speech", "laughter": "Laughter", "applause": "Applause", "silence": "Event_UNK"}


def demo_timeline() -> Timeline:
    """The embedded demo timeline, validated."""
    return parse_timeline(DEMO_TIMELINE, source="demo timeline")


def with_gaps(timeline: Timeline) -> list[Segment]:
    """The timeline's segments with the silent gaps between them made explicit."""
    out, t = [], 0.0
    for seg in timeline.segments:
        if seg.start_s > t:
            out.append(Segment(t, seg.start_s, "silence"))
        out.append(seg)
        t = seg.end_s
    if t < timeline.duration_s:
        out.append(Segment(t, timeline.duration_s, "silence"))
    return out


@dataclass(frozen=True, slots=True)
class SegmentCheck:
    """How the windows centred inside one truth segment were tagged."""

    segment: Segment
    windows: int
    agree: int
    mean_p: float       # mean probability of the true event over those windows


def compare_windows(timeline: Timeline, starts: np.ndarray, ends: np.ndarray, tags: list[str],
                    p_event: dict[str, np.ndarray]) -> list[SegmentCheck]:
    """Per truth segment: windows whose centre falls inside it, and how many got its event tag."""
    centres = (starts + ends) / 2
    checks = []
    for seg in with_gaps(timeline):
        inside = np.flatnonzero((centres >= seg.start_s) & (centres < seg.end_s))
        want = EVENT_OF_KIND[seg.kind]
        agree = sum(tags[i] == want for i in inside)
        p = p_event[want][inside] if want in p_event else np.zeros(len(inside))
        checks.append(SegmentCheck(seg, len(inside), agree, float(p.mean()) if len(inside) else float("nan")))
    return checks
