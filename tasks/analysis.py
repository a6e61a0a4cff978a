"""detect and store, for a run of streams: from each stream's scan to its events, per-minute rows
and speech chunks, and from each analysis to its rows in the results store. Each item is a typed
record or the Failure of its stream (stamped with the step it failed in); one stream's fault never
stops the others."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from laughtrack import density, events as events_mod, progress
from laughtrack.params import AnalysisParams
from laughtrack.records import Detected, Failure, Heard, Job, Scanned, Stage, each
from laughtrack.store import AnalysisRows, StoreConfig, open_store


@task(name="detect", cache_policy=NO_CACHE)
def detect_events(scanned: list[Scanned | Failure], params: AnalysisParams) -> list[Detected | Failure]:
    """events ─► density, segment: each stream's timed events (every label, from its probabilities),
    its per-minute rows (wide and long) and its speech as ≤ 15 s chunks to transcribe."""
    return each(scanned, Stage.EVENTS, lambda s: _detect(s, params))


def _detect(s: Scanned, params: AnalysisParams) -> Detected:
    found = events_mod.detect_all(s.scan.start_s, s.scan.end_s, s.scan.probs["event"], s.scan.names["event"],
                                  params.events)
    duration = s.item.duration_ms
    return Detected(s.item, s.scan, found, density.minute_density(found, duration),
                    density.minute_labels(found, duration), events_mod.speech_chunks(found, duration))


@task(name="store", cache_policy=NO_CACHE)
def store_analyses(db: StoreConfig, heard: list[Heard | Failure]) -> list[bool | Failure]:
    """Write each analysis in a transaction of its own: True, False when it was already stored, or
    that stream's Failure (its own, or its write's); the others are written all the same."""
    built = each(heard, Stage.STORE, _rows)
    rows = [b for b in built if not isinstance(b, Failure)]
    written = iter(open_store(db).write_analyses(rows) if rows else [])
    outcomes = []
    for item in built:
        if isinstance(item, Failure):
            outcomes.append(item)
            continue
        done = next(written)
        if not isinstance(done, bool):          # the store's own failure of that write
            outcomes.append(Failure.of_job(item.job, Stage.STORE, done))
            continue
        progress.report(item.job.path, Stage.DONE if done else Stage.SKIPPED)   # stored: kept on an interrupt
        outcomes.append(done)
    return outcomes


def _rows(h: Heard) -> AnalysisRows:
    progress.report(h.job.path, Stage.STORE)
    d = h.detected
    return AnalysisRows.build(d.item.job, d.item.duration_ms / 1000, d.scan, d.events, h.transcripts, d.minutes,
                              d.labels)


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
