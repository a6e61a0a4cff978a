"""What one analysis writes: the pipeline's records turned into rows of the declared tables."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from laughtrack.events import Event
from laughtrack.records import Failure, Job, MinuteLabel, MinuteRow
from laughtrack.store.schema import EMOTION_COLUMNS, EVENT_COLUMNS, TABLES

if TYPE_CHECKING:   # the store never needs torch: these are type names only
    from sensevoice_core import ScanResult, Transcript

DONE = "done"


@dataclass(frozen=True)
class AnalysisRows:
    """Everything one (video, stream, analysis) writes, in one transaction."""

    job: Job                    # video, stream and lineage records, and the path this run saw
    duration_s: float
    windows: pa.Table
    segments: pa.Table
    tokens: pa.Table
    events: pa.Table
    minute_density: pa.Table
    minute_events: pa.Table

    @classmethod
    def build(cls, job: Job, duration_s: float, scan: ScanResult, events: list[Event],
              transcripts: list[Transcript], minutes: list[MinuteRow], labels: list[MinuteLabel]) -> AnalysisRows:
        aid = job.analysis_id
        return cls(job=job, duration_s=duration_s, windows=window_table(aid, scan),
                   segments=segment_table(aid, transcripts), tokens=token_table(aid, transcripts),
                   events=event_table(aid, events),
                   minute_density=minute_table(aid, job.video.video_id, job.stream_index, minutes),
                   minute_events=label_table(aid, labels))

    def results(self) -> dict[str, pa.Table]:
        """The per-analysis tables, in insert order."""
        return {"windows": self.windows, "segments": self.segments, "tokens": self.tokens, "events": self.events,
                "minute_density": self.minute_density, "minute_events": self.minute_events}

    def video_row(self, path: str, at: datetime) -> pa.Table:
        return TABLES["videos"].rows([dict(asdict(self.job.video), path=path, first_seen_at=at)])

    def stream_row(self) -> pa.Table:
        row = {("stream_index" if k == "index" else k): v for k, v in asdict(self.job.audio).items()}
        return TABLES["audio_streams"].rows([dict(row, video_id=self.job.video.video_id)])

    def analysis_row(self, finished_at: datetime) -> pa.Table:
        return TABLES["analyses"].rows([dict(asdict(self.job.lineage), duration_s=self.duration_s,
                                             finished_at=finished_at, status=DONE)])


def path_row(video_id: str, path: str, at: datetime) -> pa.Table:
    return TABLES["video_paths"].rows([{"video_id": video_id, "path": path, "seen_at": at}])


def failure_table(failures: list[Failure], at: datetime) -> pa.Table:
    columns = set(TABLES["failures"].names)
    return TABLES["failures"].rows([{k: v for k, v in asdict(f).items() if k in columns} |
                                    dict(stage=str(f.stage), at=at, resolved_at=None) for f in failures])


def window_table(aid: str, scan: ScanResult) -> pa.Table:
    """The `windows` rows of one scan."""
    n = len(scan)
    lang = scan.probs["language"]
    return TABLES["windows"].arrow({
        "analysis_id": [aid] * n, "start_s": scan.start_s, "end_s": scan.end_s,
        "event": scan.tags("event"), "emotion": scan.tags("emotion"), "language": scan.tags("language"),
        **{col: scan.prob("event", tag) for tag, col in EVENT_COLUMNS.items()},
        **{col: scan.prob("emotion", tag) for tag, col in EMOTION_COLUMNS.items()},
        "p_language": lang.max(axis=1) if n else np.zeros(0, np.float32),
        "text": scan.text,
    })


def event_table(aid: str, events: list[Event]) -> pa.Table:
    """The `events` rows."""
    return TABLES["events"].arrow({
        "analysis_id": [aid] * len(events), "label": [e.label for e in events],
        "start_s": [e.start_s for e in events], "end_s": [e.end_s for e in events],
        "peak_p": [e.peak_p for e in events], "mean_p": [e.mean_p for e in events]})


def segment_table(aid: str, transcripts: list[Transcript]) -> pa.Table:
    """The `segments` rows: one per transcribed speech chunk."""
    return TABLES["segments"].arrow({
        "analysis_id": [aid] * len(transcripts),
        **{name: [getattr(t, name) for t in transcripts]
           for name in ("start_s", "end_s", "language", "emotion", "event", "raw_text", "text")},
        "tokens_json": [json.dumps([[k.text, k.start_s, k.end_s] for k in t.tokens]) for t in transcripts]})


def token_table(aid: str, transcripts: list[Transcript]) -> pa.Table:
    """The `tokens` rows: every emitted text token with its time (sentencepiece ▁ shown as a space)."""
    tokens = [k for t in transcripts for k in t.tokens]
    return TABLES["tokens"].arrow({
        "analysis_id": [aid] * len(tokens), "start_s": [k.start_s for k in tokens],
        "end_s": [k.end_s for k in tokens], "piece": [k.text for k in tokens],
        "text": [k.text.replace("\u2581", " ") for k in tokens]})


def minute_table(aid: str, video_id: str, stream_index: int, minutes: list[MinuteRow]) -> pa.Table:
    """The `minute_density` rows."""
    return TABLES["minute_density"].rows(
        dict(asdict(m), analysis_id=aid, video_id=video_id, stream_index=stream_index) for m in minutes)


def label_table(aid: str, labels: list[MinuteLabel]) -> pa.Table:
    """The `minute_events` rows."""
    return TABLES["minute_events"].rows(dict(asdict(m), analysis_id=aid) for m in labels)
