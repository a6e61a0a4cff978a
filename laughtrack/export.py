"""Moments for editors: a stream's events as WebVTT or SRT cues (webvtt-py, srt), an Audacity
label track, or CSV, so an editor can jump to each laugh. Pure: events in, text out."""

from __future__ import annotations

import csv
import datetime as dt
import io


def cue_text(event: dict) -> str:
    return f"[{event['label'].lower()}] peak {event['peak_p']:.2f}"


def _vtt(events: list[dict]) -> str:
    import webvtt
    from webvtt.models import Timestamp
    doc = webvtt.WebVTT()
    for e in events:
        doc.captions.append(webvtt.Caption(str(Timestamp.from_seconds(float(e["start_s"]))),
                                           str(Timestamp.from_seconds(float(e["end_s"]))), cue_text(e)))
    return doc.content


def _srt(events: list[dict]) -> str:
    import srt
    return srt.compose([srt.Subtitle(index=i, start=dt.timedelta(seconds=float(e["start_s"])),
                                     end=dt.timedelta(seconds=float(e["end_s"])), content=cue_text(e))
                        for i, e in enumerate(events, 1)], reindex=False)


def _audacity(events: list[dict]) -> str:
    """File → Import → Labels: start<TAB>end<TAB>label, in seconds."""
    return "".join(f"{e['start_s']:.6f}\t{e['end_s']:.6f}\t{e['label']}\n" for e in events)


def _csv(events: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, ["label", "start_s", "end_s", "peak_p", "mean_p"], lineterminator="\n",
                            extrasaction="ignore")
    writer.writeheader()
    writer.writerows(events)
    return out.getvalue()


WRITERS = {"vtt": _vtt, "srt": _srt, "audacity": _audacity, "csv": _csv}
FORMATS = tuple(WRITERS)


def render(events: list[dict], fmt: str) -> str:
    """`events`: rows with label, start_s, end_s, peak_p, mean_p, in time order."""
    if fmt not in WRITERS:
        raise ValueError(f"format {fmt!r}: use one of {', '.join(FORMATS)}")
    return WRITERS[fmt](events)
