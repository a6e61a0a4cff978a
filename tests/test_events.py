"""Window probabilities → events → per-minute density: pure functions, tables, integer ms."""

import numpy as np
import pytest

from laughtrack import density, events
from laughtrack.events import Event, EventOptions


def windows(p, window_ms=500, hop_ms=250):
    """Start/end seconds for len(p) windows on a regular grid."""
    starts = np.arange(len(p)) * hop_ms
    return starts / 1000, (starts + window_ms) / 1000


def test_slot_probability_is_the_mean_of_the_covering_windows():
    edges, p = events.slot_probabilities(np.array([0, 250, 500]), np.array([500, 750, 1000]),
                                         np.array([1.0, 0.0, 0.5]))
    assert edges.tolist() == [0, 250, 500, 750, 1000]
    assert p.tolist() == [1.0, 0.5, 0.25, 0.5]


@pytest.mark.parametrize("p, options, expected", [
    # 0.25 s slots, each the mean of the two 0.5 s windows over it; an edge slot at 0.5 is on
    ([0, 0, 1, 1, 1, 1, 0, 0], EventOptions(), [(500, 1750)]),
    # hysteresis: on at 0.6, stays on down to 0.3
    ([0, 0.9, 0.5, 0.4, 0.1, 0], EventOptions(on=0.6, off=0.3, min_duration_s=0, merge_gap_s=0), [(500, 1000)]),
    # a one-slot gap is merged when merge_gap_s allows it, kept apart otherwise
    ([1, 1, 0, 0, 1, 1], EventOptions(merge_gap_s=0.5), [(0, 1750)]),
    ([1, 1, 0, 0, 1, 1], EventOptions(merge_gap_s=0.0), [(0, 750), (1000, 1750)]),
    # events shorter than min_duration_s are dropped
    ([0, 0, 0.6, 0, 0, 0], EventOptions(min_duration_s=0.6), []),
    # nothing above threshold → nothing
    ([0.2] * 6, EventOptions(), []),
])
def test_detect_table(p, options, expected):
    start_s, end_s = windows(p)
    probs = np.stack([np.asarray(p, float), 1 - np.asarray(p, float)], axis=1)
    got = events.detect_all(start_s, end_s, probs, ("Speech", "Event_UNK"), options)   # the default rule
    assert [(e.start_ms, e.end_ms) for e in got] == expected
    assert all(e.label == "Speech" and 0 <= e.mean_p <= e.peak_p <= 1 for e in got)


def test_each_label_has_its_own_rule_and_edges_follow_the_peak():
    # laughter under speech: P(Laughter) about 0.35 for 2 s, speech about 0.6 all along
    p_laugh = [0.02, 0.02, 0.1, 0.35, 0.35, 0.36, 0.35, 0.35, 0.35, 0.1, 0.02, 0.02]
    start_s, end_s = windows(p_laugh)
    probs = np.stack([p_laugh, np.full(12, 0.6), np.zeros(12)], axis=1)
    got = events.detect_all(start_s, end_s, probs, ("Laughter", "Speech", "Event_UNK"))
    laughs = [(e.start_ms, e.end_ms) for e in got if e.label == "Laughter"]
    assert laughs == [(750, 2500)]           # found (0.35 < 0.5); edges where it is half its peak
    assert [e.label for e in got if e.start_ms == 0] == ["Speech"]
    plain = EventOptions(labels=())          # one rule for all: the laugh under speech is lost
    assert [e.label for e in events.detect_all(start_s, end_s, probs, ("Laughter", "Speech", "Event_UNK"), plain)] \
        == ["Speech"]


def test_event_unk_is_never_an_event():
    start_s, end_s = windows([1.0] * 4)
    got = events.detect_all(start_s, end_s, np.ones((4, 1)), ("Event_UNK",))
    assert got == []


@pytest.mark.parametrize("bad", [EventOptions(on=0.3, off=0.5), EventOptions(on=1.0), EventOptions(min_duration_s=-1),
                                 EventOptions(edge=1.0), EventOptions(name="my set"),
                                 EventOptions().with_rules([events.LabelRule("Laughter", 0.2, 0.3, 0, 0)], "x")])
def test_event_options_are_validated(bad):
    with pytest.raises(ValueError):
        bad.validate()


def ev(a_ms, b_ms, label="Laughter"):
    return Event(label, a_ms, b_ms, 1.0, 1.0)


@pytest.mark.parametrize("evs, duration_ms, expected", [
    # crossing a minute boundary: split exactly at 60 000 ms, counted in the onset minute
    ([ev(57_500, 63_500)], 65_000, [(0, 2.5, 1), (1, 3.5, 0)]),
    # ending exactly on the boundary stays in its minute
    ([ev(59_000, 60_000)], 61_000, [(0, 1.0, 1), (1, 0.0, 0)]),
    # 59.999 s is minute 0: no float drift in integer ms
    ([ev(59_900, 59_999)], 61_000, [(0, 0.099, 1), (1, 0.0, 0)]),
    # back-to-back events both counted
    ([ev(10_000, 12_000), ev(12_000, 13_000)], 30_000, [(0, 3.0, 2)]),
    # an event past the end of the stream is clipped to it
    ([ev(125_000, 140_000)], 130_500, [(0, 0, 0), (1, 0, 0), (2, 5.5, 1)]),
])
def test_minute_density_table(evs, duration_ms, expected):
    rows = density.minute_density(evs, duration_ms)
    assert [(r.minute, r.laughter_s, r.laughter_count) for r in rows] == expected


def test_covered_seconds_last_minute_is_short_and_every_minute_is_present():
    rows = density.minute_density([], 130_500)
    assert [r.covered_s for r in rows] == [60.0, 60.0, 10.5]
    assert density.minute_density([], 0)[0].covered_s == 0.0


def test_minute_labels_keep_every_label():
    rows = density.minute_labels([ev(1000, 3000, "Cough"), ev(2000, 2500, "Laughter")], 60_000)
    assert {(r.label, r.seconds, r.count) for r in rows} == {("Cough", 2.0, 1), ("Laughter", 0.5, 1)}


@pytest.mark.parametrize("speech, duration_ms, expected", [
    # padded by 200 ms, clipped at 0
    ([(0, 5_000)], 10_000, [(0, 5_200)]),
    # pauses ≤ 1 s are joined
    ([(1_000, 3_000), (3_800, 6_000)], 10_000, [(800, 6_200)]),
    # long speech is split evenly into chunks ≤ 15 s
    ([(0, 70_000)], 70_000, [(0, 14_000), (14_000, 28_000), (28_000, 42_000), (42_000, 56_000),
                             (56_000, 70_000)]),
])
def test_speech_chunks(speech, duration_ms, expected):
    got = events.speech_chunks([ev(a, b, "Speech") for a, b in speech], duration_ms)
    assert got == expected
    assert all(b - a <= 15_000 for a, b in got)
