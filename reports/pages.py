"""What the web page shows of one analysed stream, from the results store alone (no Gradio here):
the rich transcript (laughtrack/transcript.py) as rows that seek the player, the per-minute table
and chart, the top moments, and the event timeline as points for a zoomable plot."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from laughtrack import transcript as transcript_mod
from laughtrack.store import Store
from laughtrack.store.records import MinuteDensity, Moment, ReportTarget, Timeline
from laughtrack.transcript import RichTranscript, clock
from reports import charts

# The per-minute table of the page and of the `analyze` API (DESIGN.md "Web page"): (column, field).
MINUTE_TABLE = (("minute", "minute"), ("laughter_s", "laughter_s"), ("applause_s", "applause_s"),
                ("laughs", "laughter_count"), ("applause_bursts", "applause_count"), ("speech_s", "speech_s"))
MINUTE_COLUMNS = tuple(column for column, _ in MINUTE_TABLE)
TRANSCRIPT_COLUMNS = ("at", "line")
TIMELINE_COLUMNS = ("minute", "probability", "sound", "at")
TIMELINE_POINTS = 1200      # points per sound the plot draws, whatever the span (a 3-hour video has 36,000 windows)
TIMELINE_SOUNDS = {"laughter": "p_laughter", "applause": "p_applause", "speech": "p_speech"}
TIMELINE_COLORS = {"laughter": charts.LAUGH, "applause": charts.CLAP, "speech": charts.SPEECH}


@dataclass(frozen=True)
class Line:
    """A row of the page's transcript: where it starts, and what it shows."""

    start_s: float
    at: str
    text: str


@dataclass(frozen=True)
class VideoPage:
    """One stream's page."""

    target: ReportTarget
    path: str
    duration_s: float
    transcript: RichTranscript
    minutes: list[list]     # rows of MINUTE_COLUMNS
    moments: list[Moment]
    timeline: Timeline
    minutes_png: bytes

    @property
    def title(self) -> str:
        return f"{Path(self.path).name} · stream {self.target.stream_index}"

    def lines(self, plain: bool = False) -> list[Line]:
        """The transcript's rows: every item with its tags, or (plain) the words of each speech line."""
        if plain:
            return [Line(i.start_s, clock(i.start_s), i.words) for i in self.transcript.speech if i.words]
        return [Line(i.start_s, clock(i.start_s), i.text()) for i in self.transcript.items]

    def text(self, plain: bool = False) -> str:
        return self.transcript.plain() if plain else self.transcript.text()

    def seek_to(self, plain: bool, row: int, shown: list | None) -> float | None:
        """Where the transcript row a viewer clicked starts: found by what the row shows (`shown`,
        right even when the table was sorted), else by its index."""
        lines = self.lines(plain)
        if shown:
            for line in lines:
                if [line.at, line.text] == [str(v) for v in shown[:2]]:
                    return line.start_s
        return lines[row].start_s if 0 <= row < len(lines) else None


def minute_rows(minutes: list[MinuteDensity]) -> list[list]:
    """The per-minute table's rows (MINUTE_COLUMNS)."""
    return [[getattr(m, field) for _, field in MINUTE_TABLE] for m in minutes]


def video_page(store: Store, analysis_id: str) -> VideoPage:
    """The page of one analysis (the latest of its stream), read from the store."""
    data = store.video_report(analysis_id)
    s = data.summary
    return VideoPage(target=s.target, path=str(s.path), duration_s=s.duration_s or 0.0,
                     transcript=transcript_mod.of(store, analysis_id), minutes=minute_rows(data.minutes),
                     moments=data.moments, timeline=data.timeline, minutes_png=charts.minute_bars(data.minutes))


def timeline_points(timeline: Timeline, from_s: float | None = None, to_s: float | None = None,
                    points: int = TIMELINE_POINTS) -> list[tuple[float, float, str, str]]:
    """The timeline between two times as rows of TIMELINE_COLUMNS, at most `points` per sound: where
    windows are more, each point is the highest probability of its stretch, so no laugh is lost to
    the thinning at any zoom."""
    mid = (timeline.start_s + timeline.end_s) / 2
    keep = np.ones(len(mid), bool)
    if from_s is not None:
        keep &= mid >= from_s
    if to_s is not None:
        keep &= mid <= to_s
    t = mid[keep]
    if not len(t):
        return []
    starts = np.unique(np.linspace(0, len(t), min(points, len(t)), endpoint=False).astype(np.int64))
    rows = []
    for sound, field in TIMELINE_SOUNDS.items():
        peaks = np.maximum.reduceat(getattr(timeline, field)[keep], starts)
        rows += [(round(float(x) / 60, 4), round(float(p), 3), sound, clock(float(x)))
                 for x, p in zip(t[starts], peaks)]
    return rows
