"""The timelines the tests, the event-rule search (tools/tune_events.py) and the sweeps use: the
accuracy set (DESIGN.md "Accuracy contract") and the overlap set. Test data, not product: the
product ships the demo timeline alone (laughtrack/synthetic/demo.py)."""

from __future__ import annotations

from laughtrack.synthetic.demo import demo_timeline
from laughtrack.synthetic.synth import Timeline, parse_timeline


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
