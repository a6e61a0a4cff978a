"""The model steps: one model per process (kept warm for every run that process serves), run by
the owner of the device (tasks/device.py), their results cached by analysis id."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

from prefect import task
from prefect.cache_policies import TASK_SOURCE, CacheKeyFnPolicy

from laughtrack import faults, media, progress
from laughtrack.params import AnalysisParams
from laughtrack.config import Engine
from laughtrack.records import Detected, Extracted, Failure, Heard, Scanned, Stage, each
from sensevoice_core import SenseVoice, scan_many, transcribe
from sensevoice_core.model import load
from tasks.device import device_owner

_models: dict[Engine, SenseVoice] = {}
_lock = threading.Lock()
model_calls = 0                      # model steps actually run in this process (tests read it)


def get_model(engine: Engine) -> SenseVoice:
    """The process-wide model for `engine`, loaded on first use."""
    with _lock:
        if engine not in _models:
            _models[engine] = load(engine.spec)
        return _models[engine]


def _count_call() -> None:
    global model_calls
    with _lock:
        model_calls += 1


def _ids_key(context, parameters: dict) -> str:
    """The cache key of a model step: each item's analysis id in order (content hash + stream + the
    whole ConfigKey: model sha, parameters, code version, backend) or its Failure, and for the
    transcripts the chunks and the PCM files' state (a result with a failure is not reused once
    the audio was extracted again); never the paths, which differ between runs and renamed copies."""
    items = parameters.get("scanned", parameters.get("detected"))
    items = [i for group in items for i in group] if items and isinstance(items[0], list) else items
    parts = []
    for item in items:
        if isinstance(item, Failure):
            parts.append(["failed", item.path, item.stream_index, item.message])
        elif isinstance(item, Detected):
            parts.append([item.job.analysis_id, item.chunks_ms, media.file_state(Path(item.item.pcm))])
        else:
            parts.append(item.job.analysis_id)
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()


_MODEL_CACHE = CacheKeyFnPolicy(cache_key_fn=_ids_key) + TASK_SOURCE


@task(name="scan", cache_policy=_MODEL_CACHE, persist_result=True)
def scan_streams(scanned: list[list[Extracted | Failure]], engine: Engine, params: AnalysisParams
                 ) -> list[Scanned | Failure]:
    """Scan the run's streams (the extract groups' results, flattened) in shared, length-sorted
    batches; a stream whose audio cannot be scanned fails alone (the others are scanned again
    without it)."""
    items = [i for group in scanned for i in group]
    ready = [i for i in items if not isinstance(i, Failure)]
    for item in ready:
        progress.report(item.job.path, Stage.SCAN)
    if not ready:
        return items
    with device_owner(engine):
        model = get_model(engine)
        _count_call()
        faults.point("scan")
        options = params.scan_options(batch_size=engine.scan_batch)
        try:
            results = iter(scan_many(model, [media.pcm_chunks(Path(i.pcm)) for i in ready], options))
            return [i if isinstance(i, Failure) else Scanned(i, next(results)) for i in items]
        except Exception:  # noqa: BLE001 — find the stream at fault: each alone
            if len(ready) == 1:
                raise
            return each(items, Stage.SCAN, lambda i: Scanned(i, scan_many(model, [media.pcm_chunks(Path(i.pcm))],
                                                                             options)[0]))


@task(name="transcribe", cache_policy=_MODEL_CACHE, persist_result=True)
def transcribe_speech(detected: list[Detected | Failure], engine: Engine, params: AnalysisParams
                      ) -> list[Heard | Failure]:
    """Transcripts of each stream's speech chunks (none where there is no speech). The chunks of
    several streams share model batches where the backend is batch-invariant (torch); on onnx-int8
    each stream's chunks are batched alone, so its text never depends on the other files, and a
    failure is that stream's alone."""
    ready = [d for d in detected if not isinstance(d, Failure)]
    work = [(k, a, b) for k, d in enumerate(ready) for a, b in d.chunks_ms] if params.transcribe else []
    out: list = [[] for _ in ready]
    if work:
        for k in dict.fromkeys(k for k, _, _ in work):
            progress.report(ready[k].job.path, Stage.TRANSCRIBE)
        with device_owner(engine):
            model = get_model(engine)
            _count_call()
            shared = getattr(model.runner, "batch_invariant", True)
            for group in _transcribe_groups(work, engine.transcribe_batch * 4, shared):
                _transcribe_group(model, group, [d.item.pcm for d in ready], engine, params, out)
    heard = iter(Heard(d, said) if isinstance(said, list) else Failure.of_job(d.job, Stage.TRANSCRIBE, said)
                 for d, said in zip(ready, out))
    return [d if isinstance(d, Failure) else next(heard) for d in detected]


def _transcribe_group(model: SenseVoice, group: list[tuple[int, int, int]], pcm_paths: list[str], engine: Engine,
                      params: AnalysisParams, out: list) -> None:
    """Append each chunk's transcript to its stream's list in `out`; on an error, the streams of the
    group get the exception instead (a stream that already failed stays failed)."""
    group = [(k, a, b) for k, a, b in group if isinstance(out[k], list)]     # a failed stream stays failed
    try:
        pieces = [(a / 1000, media.pcm_slice(Path(pcm_paths[k]), a, b)) for k, a, b in group]
        said = transcribe(model, pieces, language=params.language, use_itn=params.use_itn,
                          batch_size=engine.transcribe_batch)
    except Exception as exc:  # noqa: BLE001 — those streams' failures rows
        for k, _, _ in group:
            out[k] = exc
        return
    for (k, _, _), transcript in zip(group, said):
        out[k].append(transcript)


def _transcribe_groups(work: list[tuple[int, int, int]], most: int, shared: bool):
    """Runs of ≤ `most` chunks (audio in memory: ≤ 4 batches of ≤ 15 s), one stream per run unless `shared`."""
    group: list[tuple[int, int, int]] = []
    for item in work:
        if group and (len(group) == most or (not shared and group[-1][0] != item[0])):
            yield group
            group = []
        group.append(item)
    if group:
        yield group
