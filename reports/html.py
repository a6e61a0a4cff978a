"""Self-contained HTML reports (images inline) from report data; the caller writes the files."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from laughtrack.store.records import CollectionReport, LanguageShare, Summary, VideoReport
from laughtrack import captions
from laughtrack.transcript import RichTranscript, SpeechLine, clock
from reports import charts

TEMPLATES = Path(__file__).parent / "templates"
_env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))


@dataclass(frozen=True)
class Report:
    """One page: its HTML, the PNG charts it shows inline (file name → bytes), and the files written
    beside it (captions.vtt)."""

    html: str
    images: dict[str, bytes]
    files: dict[str, bytes] = field(default_factory=dict)


def num(value, digits: int = 2) -> str:
    """How every number appears in a report (tests format SQL results the same way)."""
    if value is None:
        return "—"
    if isinstance(value, (int, str)):
        return str(value)
    return f"{value:.{digits}f}"


def summary_cards(summary: Summary, languages: list[LanguageShare]) -> list[tuple[str, str]]:
    """The card row of a video report, in order: (label, formatted value)."""
    params = json.loads(summary.params_json)
    return [
        ("laughs / min", num(summary.laughs_per_min)),
        ("applause / min", num(summary.applause_per_min)),
        ("laughter s", num(summary.laughter_s)),
        ("applause s", num(summary.applause_s)),
        ("engagement score", num(summary.engagement_score)),
        ("coverage", num(summary.coverage)),
        ("language", languages[0].language if languages else "—"),
        ("model", str(summary.model_id)),
        ("windows", f"{params.get('window_s', 0):g} s / {params.get('hop_s', 0):g} s hop"),
    ]


REPORT_MINUTE_FIELDS = ("minute", "laughter_s", "applause_s", "laughter_count", "applause_count", "speech_s", "covered_s")


CAPTIONS_FILE = "captions.vtt"


def video_report(data: VideoReport, transcript: RichTranscript | None = None, back: str | None = None) -> Report:
    """The per-video page from `store.video_report` and the analysis' rich transcript: the video
    itself (its own file, with the captions as a track), every time a link that plays it from there."""
    s = data.summary
    duration = s.duration_s or 0.0
    transcript = transcript or RichTranscript(())
    vtt = captions.render(captions.caption_cues(transcript), "vtt")
    source = Path(str(s.path))
    images = {
        "minutes.png": charts.minute_bars(data.minutes),
        "timeline.png": charts.probability_timeline(data.timeline, data.events, duration),
        "emotions.png": charts.emotion_mix(data.emotions),
        "languages.png": charts.language_profile(data.languages_per_minute, len(data.minutes)),
    }
    alts = {"timeline.png": "Event probability across the video",
            "minutes.png": "Laughter and applause seconds per minute",
            "emotions.png": "Emotion mix per minute", "languages.png": "Spoken language per minute"}
    html = _env.get_template("video.html").render(
        css=_css(), back=back, title=Path(str(s.path)).name, s=s, duration_min=num(duration / 60, 1),
        model_short=str(s.model_sha256)[:16], cards=summary_cards(s, data.languages), images=list(alts.items()),
        inline=_inline(images),
        moments=[{"rank": m.rank, "label": m.label, "start": clock(m.start_s), "end": clock(m.end_s),
                  "t": round(m.start_s, 2), "seconds": num(m.seconds), "peak_p": num(m.peak_p),
                  "said_before": m.said_before} for m in data.moments],
        minutes=[{k: num(getattr(m, k)) for k in REPORT_MINUTE_FIELDS} for m in data.minutes],
        video=source.as_uri() if source.is_absolute() else None, captions_file=CAPTIONS_FILE,
        track="data:text/vtt;base64," + base64.b64encode(vtt.encode("utf-8")).decode("ascii"),
        language=next((i.language for i in transcript.speech if i.language), "und"),
        lines=[{"t": round(i.start_s, 2), "at": clock(i.start_s), "text": i.text(),
                "kind": "speech" if isinstance(i, SpeechLine) else "sound"} for i in transcript.items])
    return Report(html, images, {CAPTIONS_FILE: vtt.encode("utf-8")})


def collection_report(data: CollectionReport, links: dict[tuple[str, int], str]) -> Report:
    """The leaderboard page from `store.collection_report`; links: (video_id, stream) → href."""
    rows = data.leaderboard
    images = {"distribution.png": charts.density_distribution(data.minutes)}
    if rows:
        images["leaderboard.png"] = charts.leaderboard(rows)
    alts = {"leaderboard.png": "Engagement score of the top videos",
            "distribution.png": "Per-minute laughter and applause density across the collection"}
    html = _env.get_template("collection.html").render(
        css=_css(), count=len(rows), total_min=num(sum(r.duration_s or 0 for r in rows) / 60, 1),
        built=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        images=[(n, alts[n]) for n in ("leaderboard.png", "distribution.png") if n in images],
        inline=_inline(images),
        rows=[{"href": links.get((r.video_id, r.stream_index)), "name": Path(str(r.path)).name,
               "stream_index": r.stream_index, "minutes": num((r.duration_s or 0) / 60, 1),
               "laughs_per_min": num(r.laughs_per_min), "applause_per_min": num(r.applause_per_min),
               "laughter_s": num(r.laughter_s), "applause_s": num(r.applause_s),
               "engagement_score": num(r.engagement_score)} for r in rows])
    return Report(html, images)


def _inline(images: dict[str, bytes]) -> dict[str, str]:
    return {name: base64.b64encode(png).decode("ascii") for name, png in images.items()}


def _css() -> str:
    return (TEMPLATES / "base.css").read_text()
