"""The embedded demo timeline and the comparison with its truth that the demo prints."""

from __future__ import annotations

from laughtrack.synthetic.synth import Timeline, TruthMinute, parse_timeline

CONTRACT_FIELDS = ("laughter_s", "applause_s")      # what the accuracy contract holds to the truth

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
def demo_timeline() -> Timeline:
    """The embedded demo timeline, validated."""
    return parse_timeline(DEMO_TIMELINE, source="demo timeline")


def minute_errors(truth: list[TruthMinute], got: list) -> dict:
    """Per-minute |error| of laughter_s and applause_s, and total-seconds relative errors. `got`:
    the store's minute rows or MinuteRow records (anything with `laughter_s` and `applause_s`)."""
    errors = [abs(getattr(t, k) - getattr(g, k)) for t, g in zip(truth, got) for k in CONTRACT_FIELDS]
    totals = {}
    for k in CONTRACT_FIELDS:
        want = sum(getattr(t, k) for t in truth)
        have = sum(getattr(g, k) for g in got)
        totals[k] = abs(have - want) / want if want else float(have > 0)
    return {"minute_errors": errors, "total_rel_error": totals, "minutes": len(truth),
            "same_minutes": len(truth) == len(got)}


def score_line(truth: list[TruthMinute], got: list) -> str:
    """The demo's verdict against the accuracy contract (DESIGN.md), in one line."""
    score = minute_errors(truth, got)
    errors, rel = score["minute_errors"], score["total_rel_error"]
    within = sum(e <= 2.0 for e in errors) / len(errors)
    return (f"per-minute laughter/applause seconds within ±2 s of the truth: {within:.0%} "
            f"(max error {max(errors):.2f} s); total error laughter {rel.get('laughter_s', 0):.1%}, "
            f"applause {rel.get('applause_s', 0):.1%}")
