"""The embedded demo timeline and the window-vs-truth comparison the demo prints."""

from __future__ import annotations

from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path

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
        t = max(t, seg.end_s)
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


# The accuracy set (DESIGN.md "Accuracy contract"): each timeline stresses one thing stock
# wrappers get wrong. Used by the tests, the event-threshold sweep (tools/tune_events.py) and bench.
def _seg(a, b, kind):
    return {"start_s": a, "end_s": b, "kind": kind}


ACCURACY_TIMELINES = {   # boundaries deliberately off the 0.5 s window grid
    "crossing": {"duration_s": 130.7, "seed": 101, "segments": [
        _seg(0, 55.3, "speech"), _seg(58.2, 63.1, "laughter"), _seg(63.1, 115.4, "speech"),
        _seg(118.3, 123.6, "applause"), _seg(124.1, 130.7, "laughter")]},
    "back_to_back": {"duration_s": 95.2, "seed": 102, "segments": [
        _seg(0, 20.3, "speech"), _seg(20.3, 24.1, "laughter"), _seg(24.1, 29.4, "applause"),
        _seg(29.4, 31.2, "laughter"), _seg(31.2, 59.4, "speech"), _seg(59.4, 62.3, "applause"),
        _seg(62.3, 64.8, "laughter"), _seg(64.8, 88.1, "speech"), _seg(89.7, 95.2, "laughter")]},
    "short_events": {"duration_s": 75.7, "seed": 103, "segments": [
        _seg(0, 10.2, "speech"), _seg(10.2, 10.7, "laughter"), _seg(10.7, 30.1, "speech"),
        _seg(30.1, 30.6, "applause"), _seg(31.3, 50.4, "speech"), _seg(50.4, 50.9, "laughter"),
        _seg(55.0, 70.2, "speech"), _seg(72.3, 72.8, "laughter")]},
    "long_silence": {"duration_s": 150.3, "seed": 104, "segments": [
        _seg(0, 15.2, "speech"), _seg(15.2, 18.4, "laughter"), _seg(110.3, 114.2, "applause"),
        _seg(114.2, 130.6, "speech"), _seg(140.2, 145.1, "laughter")]},
    "tail_after_speech": {"duration_s": 67.9, "seed": 105, "segments": [
        _seg(0, 30.4, "speech"), _seg(33.3, 38.2, "laughter"), _seg(40.1, 49.3, "applause"),
        _seg(52.2, 58.4, "laughter"), _seg(60.6, 67.9, "applause")]},
}


# Sounds at once (DESIGN.md "Timelines with overlap"): an audience under a speaker.
OVERLAP_TIMELINES = {
    "laughter_under_speech": {"duration_s": 124.6, "seed": 201, "segments": [
        _seg(0, 62.2, "speech"), _seg(8.3, 11.6, "laughter"), _seg(25.2, 27.1, "laughter"),
        _seg(44.7, 49.9, "laughter"), _seg(59.1, 63.8, "laughter"), _seg(66.1, 121.3, "speech"),
        _seg(80.4, 83.3, "laughter"), _seg(101.2, 104.9, "laughter"), _seg(119.6, 124.6, "laughter")]},
    "applause_under_speech": {"duration_s": 97.3, "seed": 202, "segments": [
        _seg(0, 40.3, "speech"), _seg(5.6, 9.8, "applause"), _seg(33.1, 38.7, "applause"),
        _seg(38.7, 45.2, "applause"), _seg(47.9, 97.3, "speech"), _seg(58.2, 61.1, "applause"),
        _seg(88.4, 97.3, "applause")]},
    "laughter_and_applause": {"duration_s": 88.1, "seed": 203, "segments": [
        _seg(0, 20.7, "speech"), _seg(20.7, 27.4, "laughter"), _seg(23.2, 30.6, "applause"),
        _seg(30.6, 55.3, "speech"), _seg(50.9, 57.8, "laughter"), _seg(54.4, 59.6, "applause"),
        _seg(61.2, 88.1, "speech"), _seg(70.3, 73.9, "laughter"), _seg(71.1, 75.2, "applause")]},
}


def overlap_timelines() -> dict[str, Timeline]:
    """The overlap set, validated."""
    return {name: parse_timeline(data, source=name) for name, data in OVERLAP_TIMELINES.items()}


def accuracy_timelines() -> dict[str, Timeline]:
    """The accuracy set plus the demo timeline, validated."""
    out = {name: parse_timeline(data, source=name) for name, data in ACCURACY_TIMELINES.items()}
    out["demo"] = demo_timeline()
    return out


def minute_errors(truth: list[dict], got: list) -> dict:
    """Per-minute |error| of laughter_s and applause_s, and total-seconds relative errors.
    `got`: minute_density rows as dicts (from the store) or MinuteRow records."""
    got = [asdict(g) if is_dataclass(g) else g for g in got]
    errors = [abs(t[k] - g[k]) for t, g in zip(truth, got) for k in ("laughter_s", "applause_s")]
    totals = {}
    for k in ("laughter_s", "applause_s"):
        want = sum(t[k] for t in truth)
        have = sum(g[k] for g in got)
        totals[k] = abs(have - want) / want if want else float(have > 0)
    return {"minute_errors": errors, "total_rel_error": totals, "minutes": len(truth),
            "same_minutes": len(truth) == len(got)}


def score_line(truth: list[dict], got: list[dict]) -> str:
    """The demo's verdict against the accuracy contract (DESIGN.md), in one line."""
    score = minute_errors(truth, got)
    errors = score["minute_errors"]
    within = sum(e <= 2.0 for e in errors) / len(errors)
    return (f"per-minute laughter/applause seconds within ±2 s of the truth: {within:.0%} "
            f"(max error {max(errors):.2f} s); total error laughter {score['total_rel_error']['laughter_s']:.1%}, "
            f"applause {score['total_rel_error']['applause_s']:.1%}")


def page_of(index: Path, outcome) -> Path:
    """The per-video report page of an analysed stream, beside the collection `index`."""
    from laughtrack.reporting import video_dir_name
    return index.parent / "videos" / video_dir_name(outcome.video_id, outcome.stream_index) / "report.html"
