"""The analysis DAG, straight-line:

    probe ─► extract ─► scan ─┬─► events ─► density ─┐
                              └─► segment ─► transcribe ┴─► store ─► report

Every step takes a group of files or streams, so that a thousand short clips cost a few hundred
task runs, not seven thousand: probe in groups of ≤ FILES_PER_TASK, the rest in runs of streams
holding ≤ AUDIO_PER_TASK_S of audio as probed (an hour-long video is a run of its own; events,
density and segment are one task, `detect`). There is no barrier between steps: every run's chain
is submitted at once and a run's scan starts as soon as its own streams are extracted, while the
next runs are still being decoded (tasks/media.py bounds the decoding at once) and the previous
run is being transcribed or stored (the model steps own the device: this machine's lock and its
host/device Prefect slot; one model per process, kept warm). An analysis already in the database
(same bytes, stream, model, parameters, code, backend) is skipped before any model work.

Each item travels as its typed record or as its Failure, stamped with the step it failed in.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from prefect import flow, get_run_logger
from prefect.task_runners import ThreadPoolTaskRunner

from laughtrack import faults, media, paths, plan, progress
from laughtrack.config import Engine, RunConfig
from laughtrack.errors import LaughtrackError
from laughtrack.records import Failure, Job, Outcome, Probed, Stage, failed
from laughtrack.store import Store, open_store
from tasks.analysis import detect_events, note_paths, record_failures, store_analyses
from tasks.device import ensure_device_limit
from tasks.media import IO_SLOTS, extract_streams, probe_files
from tasks.model import get_model, scan_streams, transcribe_speech
from tasks.report import build_reports, publish_artifacts

# Threads that run (or wait for) task runs: most wait on another's result; the real work is
# bounded elsewhere (IO_SLOTS decodes at once, one model step per device).
TASK_THREADS = 32
FILES_PER_TASK = 32          # probe / extract
AUDIO_PER_TASK_S = 900.0     # scan ─► … ─► store: streams per task, by their audio
STREAMS_PER_TASK = 128


@dataclass
class BatchResult:
    """What a batch did, per stream and per failure; the CLI prints it, deployments log it."""

    analysed: list[Outcome] = field(default_factory=list)
    skipped: list[Outcome] = field(default_factory=list)    # already in the database
    failures: list[Failure] = field(default_factory=list)
    report: str = ""                                         # the collection report's index.html
    pages_left: int = 0                                      # video pages left for `laughtrack report`
    notes: list[str] = field(default_factory=list)           # one-line remarks (a late-starting stream, …)
    problems: list[str] = field(default_factory=list)        # one-line faults after the analyses (the report)

    def fail(self, failure: Failure) -> None:
        self.failures.append(failure)
        progress.report(failure.path, Stage.FAILED if failure.recorded else Stage.STOPPED)


@flow(name="analyze-batch", task_runner=ThreadPoolTaskRunner(max_workers=TASK_THREADS))
def analyze_batch(paths: list[str], config: RunConfig | None = None) -> BatchResult:
    """Analyse media files, folders and globs, then report. Without `config` (a deployment run),
    the settings come from the worker's $LAUGHTRACK_* environment."""
    faults.arm(*(os.environ.get(name) for name in faults.FAULT_VARS))     # crash tests only
    return run(paths, config or RunConfig.from_env(os.environ))


@flow(name="analyze-video", task_runner=ThreadPoolTaskRunner(max_workers=TASK_THREADS))
def analyze_video(path: str, config: RunConfig | None = None, sha256: str | None = None,
                  event_id: str | None = None) -> BatchResult:
    """Analyse one media file, then report. `sha256` and `event_id` come from an upload event (the
    deployment's trigger); they are logged, the content is hashed again."""
    if event_id:
        get_run_logger().info("triggered by event %s for %s (sha256 %s)", event_id, path, sha256)
    faults.arm(*(os.environ.get(name) for name in faults.FAULT_VARS))     # crash tests only
    return run([path], config or RunConfig.from_env(os.environ))


def warm_up(config: RunConfig) -> None:
    """Load this process's model and create its device slot before the first run asks for them
    (a long-running process: the web page, `watch --run`)."""
    engine = config.engine()
    ensure_device_limit(engine)
    get_model(engine)


def run(inputs: list[str], config: RunConfig) -> BatchResult:
    """The DAG for a batch of inputs under one configuration."""
    store, result = open_store(config.store), BatchResult()
    config = config.resolved(store)           # the named event rules, from the results store
    engine = config.engine()
    ensure_device_limit(engine)
    files = expand(inputs, result)
    jobs = probe(files, config, engine, result)
    todo, aliases = skip_done(jobs, store, result)
    stored = analyse(todo, engine, config)
    collect(stored, result)
    finish(aliases, config, result)
    return result


def expand(inputs: list[str], result: BatchResult) -> list[str]:
    """Media files named by the inputs; an input that matches nothing is a failure."""
    files, unmatched = paths.expand(inputs)
    for raw, why in unmatched:
        result.fail(Failure.of(raw, Stage.EXPAND, LaughtrackError(f"'{raw}': {why}")))
    return files


def probe(files: list[str], config: RunConfig, engine: Engine, result: BatchResult) -> list[Job]:
    """probe ─►: hash and list the streams of every file (groups side by side); one job per chosen stream."""
    key = engine.config_key(config.params)
    groups = plan.split(files, IO_SLOTS, FILES_PER_TASK)
    futures = [probe_files.submit(group) for group in groups]
    jobs = []
    for group, future in zip(groups, futures):
        done = settle(future)
        probed = done.value if done.error is None else [Failure.of(path, Stage.PROBE, done.error) for path in group]
        for item in probed:
            if isinstance(item, Failure):
                result.fail(item)
            else:
                jobs += _jobs(item, config, key, engine, result)
    return jobs


def _jobs(probed: Probed, config: RunConfig, key, engine: Engine, result: BatchResult) -> list[Job]:
    try:
        chosen = plan.jobs(probed, config.stream, key, config.model, engine.label)
    except LaughtrackError as exc:
        result.fail(Failure.of(probed.path, Stage.PROBE, exc, probed.sha256))
        return []
    result.notes += [f"'{probed.path}': audio stream {j.stream_index} starts at {j.audio.start_s:.1f} s into the "
                     "video; it is padded with silence, so every time is the video's" for j in chosen
                     if j.audio.start_s > media.LATE_START_S]
    return chosen


def skip_done(jobs: list[Job], store: Store, result: BatchResult) -> tuple[list[Job], list[Job]]:
    """(jobs to run, in-batch duplicates): each analysis once; known videos under new names noted."""
    done = store.done_analyses([j.analysis_id for j in jobs])
    todo, aliases, seen = [], [], set()
    for job in jobs:
        if job.analysis_id in done or job.analysis_id in seen:
            if job.analysis_id in done:
                store.note_path(job.video, job.path, job.stream_index)
            else:
                aliases.append(job)
            result.skipped.append(Outcome.of(job))
            progress.report(job.path, Stage.SKIPPED)
        else:
            seen.add(job.analysis_id)
            todo.append(job)
    return todo, aliases


def analyse(jobs: list[Job], engine: Engine, config: RunConfig) -> list[tuple[list[Job], list]]:
    """extract ─► scan ─┬─► events ─► density / segment ─► transcribe ─► store, per run of streams,
    every run submitted at once: (the run, its steps' futures in the DAG's order)."""
    stored = []
    for run_ in plan.by_audio(jobs, AUDIO_PER_TASK_S, STREAMS_PER_TASK):
        extracted = [extract_streams.submit(group, engine.cache_dir)
                     for group in plan.split(run_, IO_SLOTS, FILES_PER_TASK)]
        scanned = scan_streams.submit(extracted, engine, config.params)
        detected = detect_events.submit(scanned, config.params)
        heard = transcribe_speech.submit(detected, engine, config.params)
        written = store_analyses.submit(config.store, heard)
        steps = [*((Stage.EXTRACT, e) for e in extracted), (Stage.SCAN, scanned), (Stage.EVENTS, detected),
                 (Stage.TRANSCRIBE, heard), (Stage.STORE, written)]
        stored.append((run_, steps))
    return stored


def collect(stored: list, result: BatchResult) -> None:
    """Wait for every run's store step: each stream is stored (or found stored by another process),
    or its Failure. A step that failed whole (the device, the model) fails every stream of its run,
    named by the first step that failed on its own (one never run because its input failed is not
    the cause)."""
    for run_, steps in stored:
        done = settle(steps[-1][1])
        outcomes = done.value if done.error is None else failed(run_, *_first_failure(steps))
        for job, outcome in zip(run_, outcomes):
            if isinstance(outcome, Failure):
                result.fail(outcome)
            else:
                (result.analysed if outcome else result.skipped).append(Outcome.of(job))


def _first_failure(steps) -> tuple[Stage, BaseException]:
    """The first step (in the DAG's order) that failed on its own, with its exception."""
    found = [(stage, done.error) for stage, done in ((stage, settle(f)) for stage, f in steps) if done.error]
    real = [f for f in found if type(f[1]).__name__ != "UnfinishedRun"]   # not run: an input had failed
    return (real or found)[0]


def finish(aliases: list[Job], config: RunConfig, result: BatchResult) -> None:
    """─► report: the other names of what was analysed, the failures, the pages and the artifacts.
    The analyses are stored by now: a fault here (a full report folder) is one line in `problems`."""
    analysed = {a.analysis_id for a in result.analysed}
    note_paths(config.store, [job for job in aliases if job.analysis_id in analysed])
    record_failures(config.store, result.failures)
    touched = sorted({a.video_id for a in result.analysed + result.skipped})
    try:
        if touched:         # nothing stored, nothing to draw (and the database may be the fault)
            result.report, result.pages_left = build_reports(config.store, config.reports, touched)
    except LaughtrackError as exc:
        result.problems.append(f"the analyses are stored, but the report was not written: {exc}")
    publish_artifacts(config.store, sorted(analysed), len(result.skipped), result.failures, result.report)


@dataclass(frozen=True)
class Settled:
    """A task's value, or the exception that ended it (one file's failure never stops the batch)."""

    value: object = None
    error: Exception | None = None


def settle(future) -> Settled:
    try:
        return Settled(value=future.result())
    except Exception as exc:  # noqa: BLE001 — becomes the streams' Failure, with its type
        return Settled(error=exc)
