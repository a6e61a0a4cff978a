"""The typed records that travel down the pipeline, and the stage names progress and failures use.

Frozen dataclasses, not dicts keyed by column names: a field that is misspelt fails at import, not
in a test run three stages later. The store turns them into rows (laughtrack/store/schema.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from laughtrack.errors import EnvironmentFault, LaughtrackError, orchestration
from laughtrack.media import AudioStream, FileState, MediaInfo

if TYPE_CHECKING:   # names only: the records never need the model (or torch)
    from laughtrack.events import Event
    from sensevoice_core import ScanResult, Transcript


class Stage(StrEnum):
    """Where a file is in the DAG; the CLI's progress bar and the `failures.stage` column use these."""

    EXPAND = "expand"
    PROBE = "probe"
    EXTRACT = "extract"
    SCAN = "scan"
    EVENTS = "events"          # events, density and speech segments from the scan
    TRANSCRIBE = "transcribe"
    STORE = "store"
    DONE = "done"
    SKIPPED = "already analysed"
    FAILED = "failed"
    STOPPED = "not analysed"   # interrupted, or the orchestration failed: run again


PIPELINE = (Stage.PROBE, Stage.EXTRACT, Stage.SCAN, Stage.TRANSCRIBE, Stage.STORE)   # the bar's steps


@dataclass(frozen=True, slots=True)
class Probed:
    """A media file, its content hash, its streams, and its (size, mtime) when it was hashed."""

    path: str
    sha256: str
    info: MediaInfo
    state: FileState


@dataclass(frozen=True, slots=True)
class Video:
    """One distinct content (`videos` row, less the path and first-seen time the store adds)."""

    video_id: str
    sha256: str
    size_bytes: int
    container: str
    duration_s: float | None


@dataclass(frozen=True, slots=True)
class Lineage:
    """What produced an analysis (`analyses` row, less the finish time and status set on write)."""

    analysis_id: str
    video_id: str
    stream_index: int
    model_id: str
    model_sha256: str
    params_json: str
    code_version: str
    config_key: str
    device: str
    started_at: datetime


@dataclass(frozen=True, slots=True)
class Job:
    """One (file, audio stream) to analyse under one configuration."""

    path: str
    probed: Probed
    video: Video
    audio: AudioStream      # the stream, as probed (`audio_streams` row with the video id)
    lineage: Lineage

    @property
    def analysis_id(self) -> str:
        return self.lineage.analysis_id

    @property
    def stream_index(self) -> int:
        return self.audio.index


@dataclass(frozen=True, slots=True)
class Extracted:
    """A job whose stream is on disk as 16 kHz mono int16 PCM."""

    job: Job
    pcm: str
    duration_ms: int


@dataclass(frozen=True, slots=True)
class Scanned:
    """An extracted stream and its scan: every window's tag probabilities."""

    item: Extracted
    scan: ScanResult

    @property
    def job(self) -> Job:
        return self.item.job


@dataclass(frozen=True, slots=True)
class Detected:
    """A scanned stream's timed events, its per-minute rows and the speech chunks to transcribe."""

    item: Extracted
    scan: ScanResult
    events: list[Event]
    minutes: list[MinuteRow]
    labels: list[MinuteLabel]
    chunks_ms: list[tuple[int, int]]

    @property
    def job(self) -> Job:
        return self.item.job


@dataclass(frozen=True, slots=True)
class Heard:
    """Everything one analysis stores: the detected stream and the transcripts of its speech."""

    detected: Detected
    transcripts: list[Transcript]

    @property
    def job(self) -> Job:
        return self.detected.item.job


@dataclass(frozen=True, slots=True)
class Outcome:
    """A stream that is in the database after this run: analysed now, or found already there."""

    path: str
    stream_index: int
    analysis_id: str
    video_id: str

    @classmethod
    def of(cls, job: Job) -> Outcome:
        return cls(job.path, job.stream_index, job.analysis_id, job.video.video_id)


@dataclass(frozen=True, slots=True)
class Failure:
    """A file or stream that could not be analysed (`failures` row, less the time set on write).

    `recorded` is False when the file is not at fault — the machine (a full disk, a corrupt
    database) or the orchestration (Prefect's server gone, an interrupt): no `failures` row, and
    running again once that is fixed finishes the work."""

    path: str
    sha256: str | None
    stream_index: int | None
    stage: Stage
    error_type: str
    message: str
    recorded: bool = True

    @classmethod
    def of(cls, path: str, stage: Stage, exc: BaseException, sha256: str | None = None,
           stream_index: int | None = None) -> Failure:
        """One line: a LaughtrackError's own message, anything else prefixed with its type."""
        text = str(exc).strip()
        message = text.splitlines()[0] if text else type(exc).__name__
        if not isinstance(exc, LaughtrackError):
            message = f"{type(exc).__name__}: {message}"
        recorded = not (isinstance(exc, EnvironmentFault) or orchestration(exc))
        return cls(path, sha256, stream_index, Stage(stage), type(exc).__name__, message, recorded)

    @classmethod
    def of_job(cls, job: Job, stage: Stage, exc: BaseException) -> Failure:
        return cls.of(job.path, stage, exc, job.video.sha256, job.stream_index)


def each(items: list, stage: Stage, step) -> list:
    """`step(item)` for each item that is not already a Failure; an item whose step raises becomes
    its Failure, stamped with `stage` (one file's fault never stops the others)."""
    out = []
    for item in items:
        if isinstance(item, Failure):
            out.append(item)
            continue
        try:
            out.append(step(item))
        except Exception as exc:  # noqa: BLE001 — that item's failure, with its type
            out.append(Failure.of_job(item if isinstance(item, Job) else item.job, stage, exc))
    return out


def failed(items: list, stage: Stage, exc: BaseException) -> list:
    """Every item that is not already a Failure, failed by the same exception (a whole step failed)."""
    return [item if isinstance(item, Failure) else Failure.of_job(item if isinstance(item, Job) else item.job,
                                                                 stage, exc) for item in items]


@dataclass(frozen=True, slots=True)
class MinuteRow:
    """One minute of one stream, wide: the figures users ask for (`minute_density` row)."""

    minute: int
    laughter_s: float
    applause_s: float
    laughter_count: int
    applause_count: int
    speech_s: float
    covered_s: float


@dataclass(frozen=True, slots=True)
class MinuteLabel:
    """One (minute, event label) of one stream, long: every label (`minute_events` row)."""

    minute: int
    label: str
    seconds: float
    count: int
