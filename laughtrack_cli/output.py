"""What the CLI prints: tables, the per-file progress bar, error lines. No work happens here."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from laughtrack import progress
from laughtrack.records import PIPELINE, Stage
from laughtrack.store.records import Engagement, MinuteDensity
from laughtrack.synthetic.synth import TruthMinute

console = Console()
err = Console(stderr=True)


def print_wide(renderable, width: int = 160) -> None:
    """A wide table whole: at the terminal's width, or at `width` when piped (rich would wrap at 80)."""
    (console if console.is_terminal else Console(width=width)).print(renderable)


def error(message: str) -> None:
    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True, markup=True)


class Bars:
    """The per-file progress bars, and what they saw: each file's last stage."""

    def __init__(self, bar: Progress):
        self.bar = bar
        self.rows: dict[str, int] = {}
        self.stages: dict[str, Stage] = {}

    def on_stage(self, path: str, stage: Stage) -> None:
        if path not in self.rows:
            self.rows[path] = self.bar.add_task(_short(path), total=len(PIPELINE), stage=str(stage))
        self.stages[path] = stage
        done = PIPELINE.index(stage) + 1 if stage in PIPELINE else len(PIPELINE)
        self.bar.update(self.rows[path], completed=done, stage=str(stage))

    def stop(self) -> None:
        self.bar.stop()

    def tally(self) -> str:
        """What an interrupted run leaves: `2 of 5 file(s) stored; run again to finish …`."""
        if not self.stages:
            return "nothing was analysed yet"
        stored = sum(s in (Stage.DONE, Stage.SKIPPED) for s in self.stages.values())
        failed = sum(s == Stage.FAILED for s in self.stages.values())
        left = len(self.stages) - stored - failed
        return (f"{stored} of {len(self.stages)} file(s) stored" + (f", {failed} failed" if failed else "")
                + ("; run again to finish the rest (what is stored is kept, not redone)" if left else ""))


@contextmanager
def progress_bars() -> Iterator[Bars]:
    """One bar per file, following the pipeline's stages while the flow runs."""
    columns = (TextColumn("{task.description}", markup=False), BarColumn(bar_width=20),
               TextColumn("{task.fields[stage]}"), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=False) as bar:
        bars = Bars(bar)
        with progress.following(bars.on_stage):
            yield bars


def _short(path: str, width: int = 40) -> str:
    return path if len(path) <= width else "…" + path[-(width - 1):]


def batch_summary(db: str, result, stats: dict[str, Engagement], wall_s: float) -> None:
    """The analyze table (one row per stream) and the one-line totals."""
    table = Table(title=f"laughtrack analyze → {db}")
    table.add_column("file", overflow="fold", ratio=1)
    table.add_column("stream", justify="right")
    table.add_column("status", no_wrap=True)
    for col in ("min", "laugh s", "clap s", "laughs", "score"):
        table.add_column(col, justify="right", no_wrap=True)
    for status, items in (("analysed", result.analysed), ("already analysed", result.skipped)):
        for a in items:
            table.add_row(a.path, str(a.stream_index), status, *_stat_cells(stats.get(a.analysis_id)))
    for f in result.failures:
        status = f"[red]failed ({f.stage})[/red]" if f.recorded else f"[yellow]not analysed ({f.stage})[/yellow]"
        table.add_row(f.path, "-" if f.stream_index is None else str(f.stream_index), status, *("-",) * 5)
    console.print(table)
    audio_s = sum(stats[a.analysis_id].duration_s or 0 for a in result.analysed if a.analysis_id in stats)
    console.print(f"{len(result.analysed)} analysed, {len(result.skipped)} already analysed, "
                  f"{len(result.failures)} failed; {audio_s / 60:.1f} min of new audio in {wall_s:.1f} s"
                  + (f" ({audio_s / wall_s:.0f}x realtime, Prefect start-up included)" if audio_s else ""),
                  highlight=False)
    if result.report:
        console.print(f"report: {result.report}", highlight=False, soft_wrap=True)
    if result.pages_left:
        console.print(f"{result.pages_left} more video page(s) than one run draws: `laughtrack report --out "
                      f"{Path(result.report).parent}` writes them all", highlight=False, soft_wrap=True)
    for note in result.notes:
        err.print(note, style="dim", highlight=False, soft_wrap=True)
    said: dict[str, int] = {}
    for f in result.failures:                  # a full disk fails every file alike: its line once
        said[f.message] = said.get(f.message, 0) + 1
    for message, times in said.items():
        error(message + (f" (× {times} files)" if times > 1 else ""))
    if any(not f.recorded for f in result.failures):
        err.print("the files marked 'not analysed' are not at fault: fix what is said above and run again",
                  highlight=False, soft_wrap=True)
    for problem in result.problems:
        error(problem)


def _stat_cells(s: Engagement | None) -> tuple[str, ...]:
    if not s:
        return ("-",) * 5
    return (f"{(s.duration_s or 0) / 60:.1f}", f"{s.laughter_s:.1f}", f"{s.applause_s:.1f}", str(s.laughs),
            f"{s.engagement_score or 0:.1f}")


def rows(names: list[str], data: list[tuple], format: str) -> None:
    """Query results as a table, CSV, or one JSON array of objects keyed by column name."""
    if format == "json":
        sys.stdout.write(json.dumps([dict(zip(names, r)) for r in data], default=str) + "\n")
    elif format == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(names)
        writer.writerows(data)
        sys.stdout.write(buf.getvalue())
    else:
        table = Table()
        for name in names:
            table.add_column(name, overflow="fold")
        for r in data:
            table.add_row(*("" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v) for v in r))
        console.print(table)


def minutes_vs_truth(truth: list[TruthMinute], got: list[MinuteDensity], title: str) -> None:
    """The demo's per-minute table: laughtrack / truth."""
    table = Table(title=f"{title}: per minute, laughtrack / truth")
    for col in ("minute", "laughter s", "applause s", "laughs", "applause", "speech s"):
        table.add_column(col, justify="right")
    for t, g in zip(truth, got):
        table.add_row(str(t.minute), f"{g.laughter_s:.2f} / {t.laughter_s:.2f}", f"{g.applause_s:.2f} / {t.applause_s:.2f}",
                      f"{g.laughter_count} / {t.laughter_count}", f"{g.applause_count} / {t.applause_count}",
                      f"{g.speech_s:.1f} / {t.speech_s:.1f}")
    console.print(table)
