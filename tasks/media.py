"""probe and extract, a group of files per task: which audio streams each file has, and each
stream as 16 kHz mono PCM on disk. One file's failure is that file's result, never the group's.

However many groups Prefect runs side by side, at most IO_SLOTS of them read or decode at once
(each extraction is an ffmpeg process): the flow can then submit every group up front, and a run's
model step starts as soon as its own streams are extracted.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from laughtrack import media, plan, progress
from laughtrack.errors import disk_fault
from laughtrack.records import Extracted, Failure, Job, Probed, Stage, each

IO_SLOTS = max(2, min(4, os.cpu_count() or 2))     # files hashed or decoded at once in this process
_io = threading.BoundedSemaphore(IO_SLOTS)
PCM_VERSION = "v2"          # v2: in the video's time (media.PCM_FILTER); v1 files are never read
_swept: set[Path] = set()


@task(name="probe", retries=0, cache_policy=NO_CACHE)
def probe_files(paths: list[str]) -> list[Probed | Failure]:
    """Hash each file's bytes and list its audio streams (a MediaError for anything unreadable, or a
    file still being written)."""
    with _io:
        return [_probe_one(path) for path in paths]


def _probe_one(path: str) -> Probed | Failure:
    progress.report(path, Stage.PROBE)
    try:
        sha, info, state = media.probe_and_hash(Path(path))
    except Exception as exc:  # noqa: BLE001 — that file's failures row
        return Failure.of(path, Stage.PROBE, exc)
    return Probed(path=path, sha256=sha, info=info, state=state)


@task(name="extract", retries=0, cache_policy=NO_CACHE)
def extract_streams(jobs: list[Job], cache_dir: str) -> list[Extracted | Failure]:
    """PCM of each job's stream, cached by content hash: a second run (or a renamed copy) skips ffmpeg."""
    with _io:
        return each(jobs, Stage.EXTRACT, lambda job: _extract(job, cache_dir))


def _extract(job: Job, cache_dir: str) -> Extracted:
    progress.report(job.path, Stage.EXTRACT)
    out = pcm_path(cache_dir, job.probed.sha256, job.stream_index)
    if out.exists() and media.pcm_ok(out, job.probed.info.expected_s(job.audio)):
        os.utime(out)           # last used now: `laughtrack cache prune` removes the least recently used
        return plan.extracted(job, str(out))
    media.discard_pcm(out)      # missing, or not whole (truncated, a disk error): made again
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise disk_fault(exc, str(out.parent)) or exc from None
    _sweep_once(out.parent)
    media.extract_pcm(Path(job.path), job.stream_index, out, expect=job.probed.state)
    return plan.extracted(job, str(out))


def pcm_path(cache_dir: str, sha256: str, stream_index: int) -> Path:
    """Where a stream's PCM is cached: by content, stream and the extraction recipe's version."""
    return Path(cache_dir) / "pcm" / f"{sha256}-a{stream_index}.{PCM_VERSION}.s16"


def _sweep_once(folder: Path) -> None:
    """Remove the partial files killed runs left in the cache, once per process and folder."""
    if folder not in _swept:
        _swept.add(folder)
        media.sweep_partials(folder)
