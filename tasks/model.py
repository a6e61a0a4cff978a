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

MODEL_LIMIT = "laughtrack-model"   # Prefect global concurrency limit (1 slot) around device work
SLOT_LEASE_S = 60                   # a crashed holder's slot is reclaimed by the server after this
SLOT_WAIT_S = 90                    # longer than lease + the server's 15 s reclaim pass

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
def device_owner(lock_dir: str):
    """Own the device: a machine-local file lock (the kernel frees it if the holder is killed),
    then the Prefect `laughtrack-model` slot (visible in the UI, shared with the server).

    A killed holder's Prefect slot is reclaimed by a real server's repossessor after its lease;
    an ephemeral server never reclaims it. When the wait times out while this process holds the
    machine lock and the server is on this machine (so every holder would be on this machine too),
    the slot is known to be stale and is reset; against a remote server it keeps waiting.
    """
    Path(lock_dir).mkdir(parents=True, exist_ok=True)
    with open(Path(lock_dir) / "device.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            with _prefect_slot():
                yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def _prefect_slot():
    acquired = False
    try:
        with concurrency(MODEL_LIMIT, occupy=1, timeout_seconds=None if _remote_server() else SLOT_WAIT_S,
                         lease_duration=SLOT_LEASE_S):
            acquired = True
            yield
            return
    except TimeoutError:
        if acquired:   # raised by the body, not by the wait
            raise
    logging.getLogger("laughtrack").warning(
        "the %s slot stayed taken for %d s while no process on this machine held the device; "
        "resetting it (left by a killed run)", MODEL_LIMIT, SLOT_WAIT_S)
    _reset_slot()
    with concurrency(MODEL_LIMIT, occupy=1, timeout_seconds=SLOT_WAIT_S, lease_duration=SLOT_LEASE_S):
        yield


def _remote_server() -> bool:
    """True when the Prefect API is on another machine (its holders may be elsewhere)."""
    from urllib.parse import urlparse

    from prefect.settings import PREFECT_API_URL
    url = PREFECT_API_URL.value()
    return bool(url) and urlparse(url).hostname not in ("127.0.0.1", "localhost", "::1")


def _reset_slot() -> None:
    from prefect import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate
    with get_client(sync_client=True) as client:
        client.update_global_concurrency_limit(MODEL_LIMIT, GlobalConcurrencyLimitUpdate(active_slots=0))


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
    with device_owner(engine.cache_dir):
        model = get_model(engine)
        _count_call()
        faults.point("scan")
        options = params.scan_options(batch_size=engine.scan_batch)
        return scan_many(model, [media.pcm_chunks(Path(p)) for p in pcm_paths], options)


_TRANSCRIBE_CACHE = Inputs(exclude=["pcm_path", "label", "engine"]) + TASK_SOURCE


@task(name="transcribe", cache_policy=_TRANSCRIBE_CACHE, persist_result=True)
def transcribe_speech(analysis_id: str, pcm_path: str, label: str, chunks_ms: list[tuple[int, int]],
                      engine: Engine, params: AnalysisParams):
    """Transcripts of the speech chunks of one stream (empty when there is no speech)."""
    if not chunks_ms or not params.transcribe:
        return []
    progress.report(label, Stage.TRANSCRIBE)
    with device_owner(engine.cache_dir):
        model = get_model(engine)
        _count_call()
        out = []
        group = engine.transcribe_batch * 4   # audio in memory: ≤ 4 batches of ≤ 15 s chunks
        for i in range(0, len(chunks_ms), group):
            pieces = [(a / 1000, media.pcm_slice(Path(pcm_path), a, b)) for a, b in chunks_ms[i:i + group]]
            out += transcribe(model, pieces, language=params.language, use_itn=params.use_itn,
                              batch_size=engine.transcribe_batch)
        return out


def ensure_model_limit() -> None:
    """Create the 1-slot limit around device work if missing (Prefect only serializes on a limit
    that exists). An existing limit is left alone: a box with two GPUs may raise it to 2."""
    from prefect import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(MODEL_LIMIT)
        except ObjectNotFound:
            try:
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=MODEL_LIMIT, limit=1))
            except ObjectAlreadyExists:
                pass
