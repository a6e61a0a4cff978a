"""events, density, segment, store: from a group of streams' scans to their rows in the results store."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from laughtrack import density, events as events_mod, progress
from laughtrack.analysis import AnalysisParams
from laughtrack.errors import captured
from laughtrack.events import Event
from laughtrack.records import Extracted, Failure, Job, MinuteLabel, MinuteRow, Stage
from laughtrack.store import AnalysisRows, StoreConfig, open_store
from sensevoice_core import ScanResult, Transcript

Minutes = tuple[list[MinuteRow], list[MinuteLabel]]


@task(name="events", cache_policy=NO_CACHE)
def detect_events(scans: list[ScanResult], params: AnalysisParams) -> list[list[Event]]:
    """Timed events of every label from each scan's event probabilities."""
    return [events_mod.detect_all(s.start_s, s.end_s, s.probs["event"], s.names["event"], params.events)
            for s in scans]


@task(name="segment", cache_policy=NO_CACHE)
def speech_chunks(events: list[list[Event]], durations_ms: list[int]) -> list[list[tuple[int, int]]]:
    """Each stream's speech regions, as ≤ 15 s chunks for transcription."""
    return [events_mod.speech_chunks(e, d) for e, d in zip(events, durations_ms)]


@task(name="density", cache_policy=NO_CACHE)
def minute_density(events: list[list[Event]], durations_ms: list[int]) -> list[Minutes]:
    """Each stream's (wide per-minute rows, long per-minute-per-label rows)."""
    return [(density.minute_density(e, d), density.minute_labels(e, d)) for e, d in zip(events, durations_ms)]


@task(name="store", cache_policy=NO_CACHE)
def store_analyses(db: StoreConfig, items: list[Extracted], scans: list[ScanResult], events: list[list[Event]],
                   transcripts: list, minutes: list[Minutes]) -> list[bool | Exception]:
    """Write each analysis in a transaction of its own: True, False when it was already stored, or
    the exception of that stream (its transcription's, or its write's); the others are written all
    the same."""
    built: list = []
    for item, scan, found, said, mins in zip(items, scans, events, transcripts, minutes):
        progress.report(item.job.path, Stage.STORE)
        built.append(said if isinstance(said, Exception) else
                     captured(AnalysisRows.build, item.job, item.duration_ms / 1000, scan, found, said, *mins))
    rows = [b for b in built if not isinstance(b, Exception)]
    written = iter(open_store(db).write_analyses(rows) if rows else [])
    outcomes = [b if isinstance(b, Exception) else next(written) for b in built]
    for item, outcome in zip(items, outcomes):      # stored now: an interrupt from here on keeps it
        if not isinstance(outcome, Exception):
            progress.report(item.job.path, Stage.DONE if outcome else Stage.SKIPPED)
    return outcomes


@task(name="note-paths", cache_policy=NO_CACHE)
def note_paths(db: StoreConfig, jobs: list[Job]) -> None:
    """Record the other names under which this batch met content it analysed."""
    store = open_store(db)
    for job in jobs:
        store.note_path(job.video, job.path, job.stream_index)


@task(name="record-failures", cache_policy=NO_CACHE)
def record_failures(db: StoreConfig, failures: list[Failure]) -> None:
    """Append one `failures` row per file or stream that could not be analysed."""
    open_store(db).record_failures(failures)
