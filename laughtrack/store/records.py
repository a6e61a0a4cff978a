"""What the store's reads give back: frozen records, one per kind of row, beside the typed writes.

A read's SQL names its columns in the order of its record's fields, and `rows_as` refuses a query
whose columns are not exactly those fields: a renamed or reordered column fails at once, in the
store, not as a KeyError in a chart three modules away. Records travel to other processes (report
pages are drawn in worker processes), so they are plain frozen dataclasses.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import TypeVar

import numpy as np

from laughtrack.errors import StoreError

PLAY_BEFORE_S = 1.0     # a moment plays from a second before it starts

R = TypeVar("R")


def rows_as(cls: type[R], cursor) -> list[R]:
    """The rows of an executed DuckDB cursor as `cls` records; StoreError if the columns differ."""
    names = [d[0] for d in cursor.description]
    wanted = [f.name for f in fields(cls)]
    if names != wanted:
        raise StoreError(f"{cls.__name__}: the query gives columns {names}, the record has {wanted}")
    return [cls(*row) for row in cursor.fetchall()]


@dataclass(frozen=True, slots=True)
class ReportTarget:
    """The latest analysis of one video stream: what a report, a page or an export is about."""

    video_id: str
    stream_index: int
    analysis_id: str


@dataclass(frozen=True, slots=True)
class Engagement:
    """One row of the `engagement` view: a video stream's latest analysis, summed up."""

    video_id: str
    path: str
    stream_index: int
    analysis_id: str
    model_id: str
    duration_s: float | None
    laughter_s: float
    applause_s: float
    laughs: int
    applause_bursts: int
    speech_s: float
    laughs_per_min: float | None
    applause_per_min: float | None
    engagement_score: float | None
    coverage: float | None

    @property
    def target(self) -> ReportTarget:
        return ReportTarget(self.video_id, self.stream_index, self.analysis_id)


@dataclass(frozen=True, slots=True)
class Summary(Engagement):
    """A report's summary: the engagement row and the lineage of its numbers."""

    model_sha256: str
    params_json: str
    code_version: str
    device: str
    finished_at: datetime


@dataclass(frozen=True, slots=True)
class MinuteDensity:
    """One `minute_density` row."""

    analysis_id: str
    video_id: str
    stream_index: int
    minute: int
    laughter_s: float
    applause_s: float
    laughter_count: int
    applause_count: int
    speech_s: float
    covered_s: float


@dataclass(frozen=True, slots=True)
class MinuteSeconds:
    """Laughter and applause seconds of one minute (the collection's distribution)."""

    laughter_s: float
    applause_s: float


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One `events` row of an analysis."""

    label: str
    start_s: float
    end_s: float
    peak_p: float
    mean_p: float


@dataclass(frozen=True, slots=True)
class Moment:
    """One of an analysis' strongest laughter or applause events, and what was said just before."""

    rank: int
    label: str
    start_s: float
    end_s: float
    seconds: float
    peak_p: float
    mean_p: float
    said_before: str | None

    @property
    def play_from_s(self) -> float:
        """Where a player should start to show it: a second before."""
        return max(0.0, self.start_s - PLAY_BEFORE_S)


@dataclass(frozen=True, slots=True)
class TranscriptSegment:
    """One transcribed speech chunk (`segments` row)."""

    start_s: float
    end_s: float
    language: str | None
    emotion: str | None
    event: str | None
    raw_text: str
    text: str
    tokens_json: str


@dataclass(frozen=True, slots=True)
class LanguageShare:
    language: str
    seconds: float


@dataclass(frozen=True, slots=True)
class EmotionMinute:
    """Mean emotion probabilities of one minute's windows."""

    minute: int
    happy: float | None
    sad: float | None
    angry: float | None
    neutral: float | None
    surprised: float | None
    other: float | None
    unknown: float | None


@dataclass(frozen=True, slots=True)
class LanguageMinute:
    """Speech windows of one minute in one language."""

    minute: int
    language: str
    windows: int


@dataclass(frozen=True)
class Timeline:
    """An analysis' windows, columnar: their times and the probabilities the charts draw."""

    start_s: np.ndarray
    end_s: np.ndarray
    p_laughter: np.ndarray
    p_applause: np.ndarray
    p_speech: np.ndarray

    @classmethod
    def of(cls, cursor) -> Timeline:
        names = [d[0] for d in cursor.description]
        columns = np.asarray(cursor.fetchall(), dtype=np.float64).reshape(-1, len(names)).T
        return cls(**dict(zip(names, columns)))


@dataclass(frozen=True)
class WindowProbs:
    """An analysis' windows with every event probability (what `laughtrack tune` re-detects from)."""

    start_s: np.ndarray
    end_s: np.ndarray
    probs: dict[str, np.ndarray]        # event tag → P per window


@dataclass(frozen=True)
class VideoReport:
    """Everything one video stream's report and page show, read in one go."""

    summary: Summary
    languages: list[LanguageShare]
    minutes: list[MinuteDensity]
    timeline: Timeline
    events: list[StoredEvent]
    emotions: list[EmotionMinute]
    languages_per_minute: list[LanguageMinute]
    moments: list[Moment]


@dataclass(frozen=True)
class CollectionReport:
    """The collection page's data: every stream ranked, and every minute's laughter and applause."""

    leaderboard: list[Engagement]
    minutes: list[MinuteSeconds]
