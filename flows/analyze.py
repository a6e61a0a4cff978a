"""The analysis DAG, straight-line:

    probe ─► extract ─► scan ─┬─► events ─► density ─┐
                              └─► segment ─► transcribe ┴─► store

One model per process; the windows of all streams in a batch share model batches; the model steps
hold the `laughtrack-model` concurrency slot. An analysis already in the database (same bytes,
stream, model, parameters, code) is skipped before any model work.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.task_runners import ThreadPoolTaskRunner

from laughtrack import paths as paths_mod, progress, store
from laughtrack.analysis import CODE_VERSION, AnalysisParams, analysis_id, video_id
from laughtrack.errors import LaughtrackError
from laughtrack.settings import Settings
from sensevoice_core import model_identity
from sensevoice_core.model import resolve_backend, resolve_device
from tasks.analysis import detect_events, minute_density, now, record_failures, speech_chunks, store_analysis
from tasks.media import ProbedFile, extract_audio, probe_media
from tasks.model import ensure_model_limit, scan_streams, transcribe_speech
from tasks.report import build_reports, publish_artifacts

IO_WORKERS = max(2, min(4, os.cpu_count() or 2))   # probe/extract threads: ffmpeg is its own process


@dataclass
class BatchResult:
    """What a batch did, per stream and per failure; the CLI prints it, deployments log it."""

    analysed: list[dict] = field(default_factory=list)   # {path, stream_index, analysis_id, video_id}
    skipped: list[dict] = field(default_factory=list)    # already in the database
    failures: list[dict] = field(default_factory=list)   # failures rows
    report: str = ""                                      # the collection report's index.html


@flow(name="analyze-batch", task_runner=ThreadPoolTaskRunner(max_workers=IO_WORKERS))
def analyze_batch(paths: list[str], db: str | None = None, model: str | None = None,
                  device: str | None = None, stream: str = "all", params: AnalysisParams = AnalysisParams(),
                  cache_dir: str | None = None, report_dir: str | None = None) -> BatchResult:
    """Analyse media files, folders and globs into DuckDB, then report. Unset settings come from
    $LAUGHTRACK_DB, $LAUGHTRACK_MODEL, $LAUGHTRACK_DEVICE, $LAUGHTRACK_CACHE, $LAUGHTRACK_REPORTS."""
    s = Settings.resolve(db=db, model=model, device=device, cache_dir=cache_dir, report_dir=report_dir)
    return _analyze(paths, s, stream, params)


@flow(name="analyze-video", task_runner=ThreadPoolTaskRunner(max_workers=IO_WORKERS))
def analyze_video(path: str, db: str | None = None, model: str | None = None,
                  device: str | None = None, stream: str = "all", params: AnalysisParams = AnalysisParams(),
                  cache_dir: str | None = None, report_dir: str | None = None,
                  sha256: str | None = None, event_id: str | None = None) -> BatchResult:
    """Analyse one media file into DuckDB, then report. `sha256` and `event_id` come from an
    upload event (the deployment's trigger); they are logged, the content is hashed again."""
    if event_id:
        get_run_logger().info("triggered by event %s for %s (sha256 %s)", event_id, path, sha256)
    s = Settings.resolve(db=db, model=model, device=device, cache_dir=cache_dir, report_dir=report_dir)
    return _analyze([path], s, stream, params)


def _analyze(inputs: list[str], s: Settings, stream: str, params: AnalysisParams) -> BatchResult:
    db, model, device, cache_dir = s.db, s.model, s.device, s.cache_dir
    params = params.validate()
    backend = resolve_backend(resolve_device(device), s.backend)
    _, model_sha = model_identity(model)
    ensure_model_limit()
    files, unmatched = paths_mod.expand(inputs)
    result = BatchResult(failures=[_failure(p, None, None, "expand", LaughtrackError(f"'{p}': {why}"))
                                   for p, why in unmatched])

    probes = [probe_media.submit(f) for f in files]
    jobs = []
    for path, fut in zip(files, probes):
        probed = _outcome(fut)
        if isinstance(probed, BaseException):
            result.failures.append(_failure(path, None, None, "probe", probed))
            continue
        try:
            jobs.extend(_job(probed, st, model, model_sha, device, backend, params)
                        for st in _streams(probed, stream))
        except LaughtrackError as exc:
            result.failures.append(_failure(path, probed.sha256, None, "probe", exc))
    todo, aliases = _skip_done(db, jobs, result)

    extracts = [extract_audio.submit(j["probed"], j["stream"]["stream_index"], cache_dir) for j in todo]
    ready = []
    for job, fut in zip(todo, extracts):
        pcm = _outcome(fut)
        if isinstance(pcm, BaseException):
            result.failures.append(_failure(job["path"], job["video"]["sha256"], job["stream"]["stream_index"],
                                            "extract", pcm))
        else:
            job["pcm"], job["duration_ms"] = pcm, Path(pcm).stat().st_size // 2 * 1000 // 16_000
            job["analysis"]["duration_s"] = job["duration_ms"] / 1000
            ready.append(job)

    scans = _outcome(scan_streams.submit([j["analysis"]["analysis_id"] for j in ready], [j["pcm"] for j in ready],
                                         [j["path"] for j in ready], model, device, params, cache_dir,
                                         backend)) if ready else []
    stored = []
    for i, job in enumerate(ready):
        if isinstance(scans, BaseException):
            result.failures.append(_failure(job["path"], job["video"]["sha256"], job["stream"]["stream_index"],
                                            "scan", scans))
            continue
        scan = scans[i]
        events = detect_events.submit(scan, params)
        chunks = speech_chunks.submit(events, job["duration_ms"])
        minutes = minute_density.submit(events, job["duration_ms"])
        transcripts = transcribe_speech.submit(job["analysis"]["analysis_id"], job["pcm"], job["path"], chunks,
                                               model, device, params, cache_dir, backend)
        stored.append((job, store_analysis.submit(db, _row_job(job), scan, events, transcripts, minutes)))

    for job, fut in stored:
        outcome = _outcome(fut)
        if isinstance(outcome, BaseException):
            result.failures.append(_failure(job["path"], job["video"]["sha256"], job["stream"]["stream_index"],
                                            "store", outcome))
        else:
            result.analysed.append(_summary(job))
            progress.report(job["path"], "done")
    analysed = {a["analysis_id"] for a in result.analysed}
    for job in aliases:  # same bytes twice in one batch: analysed once, both names recorded
        if job["analysis"]["analysis_id"] in analysed:
            store.note_path(Path(db), job["video"], job["path"])
    for failure in result.failures:
        progress.report(failure["path"], "failed")
    record_failures(db, result.failures)
    touched = sorted({a["video_id"] for a in result.analysed + result.skipped})
    result.report = build_reports(db, s.report_dir, touched)
    publish_artifacts(db, [a["analysis_id"] for a in result.analysed], len(result.skipped), result.failures,
                      result.report)
    return result


def _outcome(future):
    """The task's value, or the exception it raised (one file's failure never stops the batch)."""
    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001 — recorded as a failures row with its type
        return exc


def _streams(probed: ProbedFile, stream: str):
    if stream == "all":
        return list(probed.info.audio)
    index = int(stream)
    if index >= len(probed.info.audio):
        raise LaughtrackError(f"'{probed.path}' has {len(probed.info.audio)} audio stream(s); "
                              f"--stream {index} does not exist")
    return [probed.info.audio[index]]


def _job(probed: ProbedFile, s, model: str, model_sha: str, device: str, backend: str,
         params: AnalysisParams) -> dict:
    vid = video_id(probed.sha256)
    return {
        "path": probed.path, "probed": probed,
        "video": {"video_id": vid, "sha256": probed.sha256, "size_bytes": probed.info.size_bytes,
                  "container": probed.info.container, "duration_s": probed.info.duration_s},
        "stream": {"video_id": vid, "stream_index": s.index, "codec": s.codec, "channels": s.channels,
                   "sample_rate": s.sample_rate, "duration_s": s.duration_s, "language_tag": s.language_tag},
        "analysis": {"analysis_id": analysis_id(probed.sha256, s.index, model_sha, params, backend=backend),
                     "video_id": vid, "stream_index": s.index, "model_id": model, "model_sha256": model_sha,
                     "params_json": params.to_json(), "code_version": CODE_VERSION, "device": f"{device}/{backend}",
                     "started_at": now()},
    }


def _skip_done(db: str, jobs: list[dict], result: BatchResult) -> tuple[list[dict], list[dict]]:
    """(jobs to run, in-batch duplicates): each analysis once; known videos under new names noted."""
    done = store.done_analyses(Path(db), [j["analysis"]["analysis_id"] for j in jobs])
    todo, aliases, seen = [], [], set()
    for job in jobs:
        aid = job["analysis"]["analysis_id"]
        if aid in done or aid in seen:
            if aid in done:
                store.note_path(Path(db), job["video"], job["path"])
            else:
                aliases.append(job)
            result.skipped.append(_summary(job))
            progress.report(job["path"], "already analysed")
        else:
            seen.add(aid)
            todo.append(job)
    return todo, aliases


def _row_job(job: dict) -> dict:
    """What the store task needs (no ProbedFile: keeps task inputs small and serializable)."""
    return {k: job[k] for k in ("path", "video", "stream", "analysis")}


def _summary(job: dict) -> dict:
    return {"path": job["path"], "stream_index": job["stream"]["stream_index"],
            "analysis_id": job["analysis"]["analysis_id"], "video_id": job["video"]["video_id"]}


def _failure(path: str, sha256: str | None, stream_index: int | None, stage: str, exc: BaseException) -> dict:
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if not isinstance(exc, LaughtrackError):
        message = f"{type(exc).__name__}: {message}"
    return {"path": path, "sha256": sha256, "stream_index": stream_index, "stage": stage,
            "error_type": type(exc).__name__, "message": message}
