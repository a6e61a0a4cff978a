"""What the web page shows of one analysed stream, from the results store alone (no Gradio here):
the rich transcript, the per-minute table, the top moments and the two charts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from laughtrack.store import Store
from laughtrack.store.records import MinuteDensity, Moment, ReportTarget
from reports import charts
from sensevoice_core.tags import display_text, strip_tags

# The per-minute table of the page and of the `analyze` API (DESIGN.md "Web page"): (column, field).
MINUTE_TABLE = (("minute", "minute"), ("laughter_s", "laughter_s"), ("applause_s", "applause_s"),
                ("laughs", "laughter_count"), ("applause_bursts", "applause_count"), ("speech_s", "speech_s"))
MINUTE_COLUMNS = tuple(column for column, _ in MINUTE_TABLE)


@dataclass(frozen=True)
class VideoPage:
    """One stream's page."""

    target: ReportTarget
    path: str
    rich_text: str          # funasr's rich_transcription_postprocess form, emoji and all
    plain_text: str         # the words alone
    minutes: list[list]     # rows of MINUTE_COLUMNS
    moments: list[Moment]
    timeline_png: bytes
    minutes_png: bytes

    @property
    def title(self) -> str:
        return f"{Path(self.path).name} · stream {self.target.stream_index}"


def minute_rows(minutes: list[MinuteDensity]) -> list[list]:
    """The per-minute table's rows (MINUTE_COLUMNS)."""
    return [[getattr(m, field) for _, field in MINUTE_TABLE] for m in minutes]


def video_page(store: Store, analysis_id: str) -> VideoPage:
    """The page of one analysis (the latest of its stream), read from the store."""
    data = store.video_report(analysis_id)
    s = data.summary
    raw = "".join(seg.raw_text for seg in store.transcript(analysis_id))
    return VideoPage(target=s.target, path=str(s.path), rich_text=display_text(raw) if raw else "",
                     plain_text=" ".join(strip_tags(raw).split()), minutes=minute_rows(data.minutes),
                     moments=data.moments,
                     timeline_png=charts.probability_timeline(data.timeline, data.events, s.duration_s or 0.0),
                     minutes_png=charts.minute_bars(data.minutes))
