"""How `laughtrack eval` and `tune` print what flows/evaluate.py found: score tables, JSON, the
tuned rules before and after."""

from __future__ import annotations

import json
import math

from rich.table import Table

from laughtrack.labelled.evaluation import LabelScore
from laughtrack.labelled.tuning import Tuned
from laughtrack_cli.output import console, print_wide

SCORE_COLUMNS = (("n_ref", "ref", "{}"), ("n_est", "found", "{}"), ("segment_precision", "seg P", "{:.2f}"),
                 ("segment_recall", "seg R", "{:.2f}"), ("segment_f1", "seg F1", "{:.2f}"),
                 ("event_precision", "evt P", "{:.2f}"), ("event_recall", "evt R", "{:.2f}"),
                 ("event_f1", "evt F1", "{:.2f}"), ("onset_error_s", "onset err s", "{:.2f}"),
                 ("offset_error_s", "offset err s", "{:.2f}"), ("minute_error_s", "min err s", "{:.2f}"),
                 ("minute_error_max_s", "max min err s", "{:.2f}"))


def score_table(scores: list[LabelScore], title: str) -> Table:
    table = Table(title=title)
    table.add_column("label")
    for _, head, _ in SCORE_COLUMNS:
        table.add_column(head, justify="right")
    for s in scores:
        table.add_row(s.label, *(_cell(getattr(s, key), fmt) for key, _, fmt in SCORE_COLUMNS))
    return table


def scores_json(scores: list[LabelScore]) -> str:
    return json.dumps({s.label: s.to_json() for s in scores}, indent=1)


def tuned_table(tuned: Tuned, base_name: str) -> Table:
    table = Table(title=f"event rules: {base_name} → {tuned.options.name}")
    for col in ("label", "on", "off", "edge", "min s", "gap s", "evt F1 before", "evt F1 after", "min err s before",
                "min err s after"):
        table.add_column(col, justify="right")
    before = {s.label: s for s in tuned.before}
    for s in tuned.after:
        if s.label == "overall":
            continue
        r, b = tuned.options.rule(s.label), before[s.label]
        table.add_row(s.label, f"{r.on:.2f}", f"{r.off:.2f}", f"{r.edge:.2f}", f"{r.min_duration_s:.2f}",
                      f"{r.merge_gap_s:.2f}",
                      _cell(b.event_f1, "{:.2f}"), _cell(s.event_f1, "{:.2f}"),
                      _cell(b.minute_error_s, "{:.2f}"), _cell(s.minute_error_s, "{:.2f}"))
    return table


def _cell(value, fmt: str) -> str:
    return "n/a" if isinstance(value, float) and math.isnan(value) else fmt.format(value)


def print_tuned(tuned: Tuned, base_name: str) -> None:
    print_wide(tuned_table(tuned, base_name))
    console.print(f"mean event F1 {Tuned.mean_event_f1(tuned.before):.3f} → {Tuned.mean_event_f1(tuned.after):.3f}",
                  highlight=False)
