"""events, density, store: from one stream's scan to its rows in the results store."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from laughtrack import density, events as events_mod, progress
from laughtrack.analysis import AnalysisParams
from laughtrack.events import Event
from laughtrack.records import Extracted, Failure, Job, MinuteLabel, MinuteRow, Stage
from laughtrack.store import AnalysisRows, StoreConfig, open_store
from sensevoice_core import ScanResult, Transcript


@task(name="events", cache_policy=NO_CACHE)
def detect_events(scan: ScanResult, params: AnalysisParams) -> list[Event]:
    """Timed events of every label from the scan's event probabilities."""
    return events_mod.detect_all(scan.start_s, scan.end_s, scan.probs["event"], scan.names["event"],
                                 params.events)


@task(name="segment", cache_policy=NO_CACHE)
def speech_chunks(events: list[Event], duration_ms: int) -> list[tuple[int, int]]:
    """Speech regions from the scan, as ≤ 15 s chunks for transcription."""
    return events_mod.speech_chunks(events, duration_ms)


@task(name="density", cache_policy=NO_CACHE)
def minute_density(events: list[Event], duration_ms: int) -> tuple[list[MinuteRow], list[MinuteLabel]]:
    """(wide per-minute rows, long per-minute-per-label rows)."""
    return density.minute_density(events, duration_ms), density.minute_labels(events, duration_ms)


@task(name="store", cache_policy=NO_CACHE)
def store_analysis(db: StoreConfig, item: Extracted, scan: ScanResult, events: list[Event], transcripts: list[Transcript],
                   minutes: tuple[list[MinuteRow], list[MinuteLabel]]) -> bool:
    """Write the analysis in one transaction; False when it was already stored."""
    progress.report(item.job.path, Stage.STORE)
    rows = AnalysisRows.build(item.job, item.duration_ms / 1000, scan, events, transcripts, *minutes)
    return open_store(db).write_analysis(rows)


@task(name="note-paths", cache_policy=NO_CACHE)
def note_paths(db: StoreConfig, jobs: list[Job]) -> None:
    """Record the other names under which this batch met content it analysed."""
    store = open_store(db)
    for job in jobs:
        store.note_path(job.video, job.path)


@task(name="record-failures", cache_policy=NO_CACHE)
def record_failures(db: StoreConfig, failures: list[Failure]) -> None:
    """Append one `failures` row per file or stream that could not be analysed."""
    open_store(db).record_failures(failures)
