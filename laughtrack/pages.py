"""What the web page shows of one analysed stream, from the results store alone (no Gradio here):
the rich transcript, the per-minute table, the top moments and the two charts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from laughtrack.store import Store
from reports import charts
from sensevoice_core.tags import display_text, strip_tags

# The per-minute table of the page and of the `analyze` API (DESIGN.md "Web page").
MINUTE_COLUMNS = ("minute", "laughter_s", "applause_s", "laughs", "applause_bursts", "speech_s")
PLAY_BEFORE_S = 1.0     # a moment plays from a second before it starts


@dataclass(frozen=True, slots=True)
class Moment:
    """One of the strongest laughter or applause events, and where the player should start."""

    rank: int
    label: str
    start_s: float
    end_s: float
    said_before: str

    @property
    def play_from_s(self) -> float:
        return max(0.0, self.start_s - PLAY_BEFORE_S)


@dataclass(frozen=True)
class VideoPage:
    """One stream's page."""

    analysis_id: str
    video_id: str
    stream_index: int
    path: str
    rich_text: str          # funasr's rich_transcription_postprocess form, emoji and all
    plain_text: str         # the words alone
    minutes: list[list]     # rows of MINUTE_COLUMNS
    moments: list[Moment]
    timeline_png: bytes
    minutes_png: bytes

    @property
    def title(self) -> str:
        return f"{Path(self.path).name} · stream {self.stream_index}"


def video_page(store: Store, analysis_id: str) -> VideoPage:
    """The page of one analysis (the latest of its stream), read from the store."""
    data = store.video_report_data(analysis_id)
    summary = data["summary"][0]
    raw = "".join(s["raw_text"] for s in store.transcript(analysis_id))
    minutes = [[m["minute"], m["laughter_s"], m["applause_s"], m["laughter_count"], m["applause_count"],
                m["speech_s"]] for m in data["minutes"]]
    moments = [Moment(m["rank"], m["label"], m["start_s"], m["end_s"], m["said_before"] or "")
               for m in data["moments"]]
    return VideoPage(analysis_id=analysis_id, video_id=summary["video_id"], stream_index=summary["stream_index"],
                     path=str(summary["path"]), rich_text=display_text(raw) if raw else "",
                     plain_text=" ".join(strip_tags(raw).split()), minutes=minutes, moments=moments,
                     timeline_png=charts.probability_timeline(data["timeline"], data["events"],
                                                              summary["duration_s"] or 0.0),
                     minutes_png=charts.minute_bars(data["minutes"]))
