"""What `laughtrack export` writes.

- Moments for editors: a stream's events as WebVTT or SRT cues, an Audacity label track, or CSV,
  so an editor can jump to each laugh.
- Captions for viewers (`--captions`): the rich transcript as captions (laughtrack/captions.py).

Which video and which events is decided here once (`find_video`, `moments`); rendering is pure:
events or a transcript in, text out (webvtt-py and srt write the files)."""

from __future__ import annotations

import csv
import io
import os
from dataclasses import asdict
from pathlib import Path

from laughtrack import captions
from laughtrack.captions import Cue
from laughtrack.errors import LaughtrackError
from laughtrack.store import Store
from laughtrack.store.records import ReportTarget, StoredEvent


def find_video(store: Store, ref: str) -> str:
    """The video an id, an id prefix or a path names (a file is known by its content, wherever it is
    now); LaughtrackError when none or several match."""
    from laughtrack import media
    from laughtrack.identity import video_id
    path = Path(ref).expanduser()
    if path.is_file():
        return video_id(media.content_sha256(path))
    found = store.find_videos(os.path.abspath(path) if os.sep in ref or path.suffix else ref)
    if len(found) == 1:
        return found[0]
    if not found:
        raise LaughtrackError(f"--video {ref!r}: no analysed video has that id (or id prefix) or path; see "
                              "`laughtrack query \"SELECT video_id, path FROM engagement\"`")
    raise LaughtrackError(f"--video {ref!r} matches {'10 or more' if len(found) == 10 else len(found)} videos "
                          f"({', '.join(found[:3])}, …): give more of the id")


def wanted_labels(text: str) -> set[str]:
    """`Laughter,applause` → the model's tags; ValueError naming what is not one."""
    from laughtrack.labelled.labels import canonical
    names = [x.strip() for x in text.split(",") if x.strip()]
    if not names or any(canonical(n) is None for n in names):
        raise ValueError(f"--labels {text!r}: use Laughter, Applause, Speech and/or Music (BGM)")
    return {canonical(n) for n in names}


def moments(store: Store, target: ReportTarget, labels: set[str]) -> list[StoredEvent]:
    """The target's events of these labels, in time order."""
    return [e for e in store.events(target.analysis_id) if e.label in labels]


def cue_text(event: StoredEvent) -> str:
    return f"[{event.label.lower()}] peak {event.peak_p:.2f}"


def _cues(fmt: str):
    """A writer of the events as caption cues in `fmt` (vtt or srt; captions.render writes them)."""
    return lambda events: captions.render([Cue(float(e.start_s), float(e.end_s), cue_text(e)) for e in events], fmt)


def _audacity(events: list[StoredEvent]) -> str:
    """File → Import → Labels: start<TAB>end<TAB>label, in seconds."""
    return "".join(f"{e.start_s:.6f}\t{e.end_s:.6f}\t{e.label}\n" for e in events)


def _csv(events: list[StoredEvent]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, ["label", "start_s", "end_s", "peak_p", "mean_p"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(asdict(e) for e in events)
    return out.getvalue()


WRITERS = {"vtt": _cues("vtt"), "srt": _cues("srt"), "audacity": _audacity, "csv": _csv}
FORMATS = tuple(WRITERS)


def render(events: list[StoredEvent], fmt: str) -> str:
    """The events in time order, as `fmt`."""
    if fmt not in WRITERS:
        raise ValueError(f"format {fmt!r}: use one of {', '.join(FORMATS)}")
    return WRITERS[fmt](events)
