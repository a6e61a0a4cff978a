"""The model steps: one model per process, one owner of the device at a time, cached results."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import threading
from pathlib import Path

from prefect import task
from prefect.cache_policies import TASK_SOURCE, Inputs
from prefect.concurrency.sync import concurrency

from laughtrack import faults, media, progress
from laughtrack.analysis import AnalysisParams
from laughtrack.config import Engine
from laughtrack.records import Stage
from sensevoice_core import SenseVoice, load_model, scan_many, transcribe

SLOT_LEASE_S = 60                   # a crashed holder's slot is released by the server after this
SLOT_WAIT_S = 10.0                  # while we hold this machine's device lock, a taken slot is stale

_models: dict[Engine, SenseVoice] = {}
_lock = threading.Lock()
model_calls = 0                      # model steps actually run in this process (tests read it)


def get_model(engine: Engine) -> SenseVoice:
    """The process-wide model for `engine`, loaded on first use."""
    with _lock:
        if engine not in _models:
            _models[engine] = load_model(engine.model, device=engine.device, backend=engine.backend,
                                         cache_dir=Path(engine.cache_dir))
        return _models[engine]


def _count_call() -> None:
    global model_calls
    with _lock:
        model_calls += 1


@contextlib.contextmanager
def device_owner(engine: Engine):
    """Own this machine's device: a machine-local file lock (the kernel frees it if its holder is
    killed), then the Prefect slot of this host and device (visible in the UI). Every machine and
    every device has its own: nothing serializes the GPUs of a cluster.

    A holder takes the lock before the slot and gives the slot back before the lock, so a process
    holding the lock that still finds the slot taken has met a killed holder's leftover: it resets
    the slot at once (a server would also release it when its lease runs out).
    """
    Path(engine.cache_dir).mkdir(parents=True, exist_ok=True)
    lock = Path(engine.cache_dir) / f"device-{engine.device.replace(':', '-')}.lock"
    with open(lock, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            with _prefect_slot(engine.device_slot):
                yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


_held: set[str] = set()              # device slots this process holds now (released on an interrupt)


def release_held_slots() -> None:
    """Give back the device slots this process holds, for a process about to exit mid-step (an
    interrupt): the next run on this machine need not wait for the lease to run out."""
    for name in list(_held):
        _reset_slot(name)
        _held.discard(name)


@contextlib.contextmanager
def _prefect_slot(name: str):
    acquired = False
    try:
        with concurrency(name, occupy=1, timeout_seconds=SLOT_WAIT_S, lease_duration=SLOT_LEASE_S):
            acquired = True
            _held.add(name)
            try:
                yield
            finally:
                _held.discard(name)
            return
    except TimeoutError:
        if acquired:   # raised by the body, not by the wait
            raise
    logging.getLogger("laughtrack").warning("the %s slot was taken while no process on this machine held the "
                                            "device; resetting it (left by a killed run)", name)
    _reset_slot(name)
    with concurrency(name, occupy=1, timeout_seconds=SLOT_WAIT_S, lease_duration=SLOT_LEASE_S):
        _held.add(name)
        try:
            yield
        finally:
            _held.discard(name)


def _reset_slot(name: str) -> None:
    from prefect import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate
    with get_client(sync_client=True) as client:
        client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(active_slots=0))


# Cache keys: the analysis ids (content hash + stream + the whole ConfigKey: model sha, parameters,
# code version, backend) and the task's source; never the paths, which differ between runs and
# between renamed copies, nor the engine, whose every number-changing part is in the ids.
_SCAN_CACHE = Inputs(exclude=["pcm_paths", "labels", "engine"]) + TASK_SOURCE


@task(name="scan", cache_policy=_SCAN_CACHE, persist_result=True)
def scan_streams(analysis_ids: list[str], pcm_paths: list[str], labels: list[str], engine: Engine,
                 params: AnalysisParams):
    """Scan several streams in length-sorted batches; one ScanResult per stream."""
    for label in labels:
        progress.report(label, Stage.SCAN)
    with device_owner(engine):
        model = get_model(engine)
        _count_call()
        faults.point("scan")
        options = params.scan_options(batch_size=engine.scan_batch)
        return scan_many(model, [media.pcm_chunks(Path(p)) for p in pcm_paths], options)


_TRANSCRIBE_CACHE = Inputs(exclude=["pcm_paths", "labels", "engine"]) + TASK_SOURCE


@task(name="transcribe", cache_policy=_TRANSCRIBE_CACHE, persist_result=True)
def transcribe_speech(analysis_ids: list[str], pcm_paths: list[str], labels: list[str],
                      chunks_ms: list[list[tuple[int, int]]], engine: Engine, params: AnalysisParams,
                      pcm_state: list | None = None):
    """Transcripts of each stream's speech chunks (empty where there is no speech), or the exception
    that stream's audio raised. The chunks of several streams share model batches where the backend
    is batch-invariant (torch); on onnx-int8 each stream's chunks are batched alone, so its text never
    depends on the other files, and a failure is that stream's alone. `pcm_state` (each PCM file's
    size and mtime) is only in the cache key: a result with a failure is not reused once the audio
    was extracted again."""
    work = [(k, a, b) for k, chunks in enumerate(chunks_ms) for a, b in chunks] if params.transcribe else []
    out: list = [[] for _ in analysis_ids]
    if not work:
        return out
    for k in dict.fromkeys(k for k, _, _ in work):
        progress.report(labels[k], Stage.TRANSCRIBE)
    with device_owner(engine):
        model = get_model(engine)
        _count_call()
        shared = getattr(model.runner, "batch_invariant", True)
        for group in _transcribe_groups(work, engine.transcribe_batch * 4, shared):
            _transcribe_group(model, group, pcm_paths, engine, params, out)
        return out


def _transcribe_group(model: SenseVoice, group: list[tuple[int, int, int]], pcm_paths: list[str], engine: Engine,
                      params: AnalysisParams, out: list) -> None:
    """Append each chunk's transcript to its stream's list in `out`; on an error, the streams of the
    group get the exception instead (a stream that already failed stays failed)."""
    group = [(k, a, b) for k, a, b in group if not isinstance(out[k], Exception)]
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


def ensure_device_limit(engine: Engine) -> None:
    """Create this host and device's 1-slot limit if missing (Prefect serializes only on a limit that
    exists). An existing limit is left alone."""
    from prefect import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(engine.device_slot)
        except ObjectNotFound:
            try:
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=engine.device_slot, limit=1))
            except ObjectAlreadyExists:
                pass
