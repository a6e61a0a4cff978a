"""events, density, store: from one stream's scan to its rows in DuckDB."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from prefect import task

from laughtrack import analysis, density, events as events_mod, progress, store
from laughtrack.analysis import AnalysisParams
from laughtrack.events import Event
from sensevoice_core import ScanResult


@task(name="events")
def detect_events(scan: ScanResult, params: AnalysisParams) -> list[Event]:
    """Timed events of every label from the scan's event probabilities."""
    return events_mod.detect_all(scan.start_s, scan.end_s, scan.probs["event"], scan.names["event"],
                                 params.events)


@task(name="segment")
def speech_chunks(events: list[Event], duration_ms: int) -> list[tuple[int, int]]:
    """Speech regions from the scan, as ≤ 15 s chunks for transcription."""
    return events_mod.speech_chunks(events, duration_ms)


@task(name="density")
def minute_density(events: list[Event], duration_ms: int) -> tuple[list[dict], list[dict]]:
    """(wide per-minute rows, long per-minute-per-label rows)."""
    return density.minute_density(events, duration_ms), density.minute_labels(events, duration_ms)


@task(name="store")
def store_analysis(db: str, job: dict, scan: ScanResult, events: list[Event], transcripts: list,
                   minutes: tuple[list[dict], list[dict]]) -> bool:
    """Write the analysis in one transaction; False when it was already stored."""
    progress.report(job["path"], "store")
    aid = job["analysis"]["analysis_id"]
    vid = job["video"]["video_id"]
    wide, long = minutes
    rows = store.AnalysisRows(
        video=job["video"], path=job["path"], stream=job["stream"], analysis=job["analysis"],
        windows=analysis.window_table(aid, scan), segments=analysis.segment_table(aid, transcripts),
        tokens=analysis.token_table(aid, transcripts),
        events=analysis.event_table(aid, events),
        minute_density=analysis.rows_table(wide, analysis.MINUTE_DENSITY_SCHEMA, analysis_id=aid,
                                           video_id=vid, stream_index=job["stream"]["stream_index"]),
        minute_events=analysis.rows_table(long, analysis.MINUTE_EVENTS_SCHEMA, analysis_id=aid))
    return store.write_analysis(Path(db), rows)


@task(name="record-failures")
def record_failures(db: str, failures: list[dict]) -> None:
    """Append one `failures` row per file or stream that could not be analysed."""
    store.record_failures(Path(db), failures)


def now() -> datetime:
    return datetime.now(timezone.utc)
