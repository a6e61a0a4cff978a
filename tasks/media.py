"""probe and extract, a group of files per task: which audio streams each file has, and each
stream as 16 kHz mono PCM on disk. One file's failure is that file's result, never the group's."""

from __future__ import annotations

import os
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from laughtrack import media, progress
from laughtrack.errors import captured, disk_fault
from laughtrack.records import Probed, Stage


@task(name="probe", retries=0, cache_policy=NO_CACHE)
def probe_files(paths: list[str]) -> list[Probed | Exception]:
    """Hash each file's bytes and list its audio streams (a MediaError for anything unreadable, or a
    file still being written)."""
    return [captured(_probe, path) for path in paths]


def _probe(path: str) -> Probed:
    progress.report(path, Stage.PROBE)
    sha, info, state = media.probe_and_hash(Path(path))
    return Probed(path=path, sha256=sha, info=info, state=state)


@task(name="extract", retries=0, cache_policy=NO_CACHE)
def extract_streams(streams: list[tuple[Probed, int]], cache_dir: str) -> list[str | Exception]:
    """PCM of each (file, stream), cached by content hash: a second run (or a renamed copy) skips ffmpeg."""
    return [captured(_extract, probed, index, cache_dir) for probed, index in streams]


def _extract(probed: Probed, stream_index: int, cache_dir: str) -> str:
    progress.report(probed.path, Stage.EXTRACT)
    out = pcm_path(cache_dir, probed.sha256, stream_index)
    if out.exists() and media.pcm_ok(out, probed.info.expected_s(probed.info.audio[stream_index])):
        os.utime(out)           # last used now: `laughtrack cache prune` removes the least recently used
        return str(out)
    media.discard_pcm(out)      # missing, or not whole (truncated, a disk error): made again
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise disk_fault(exc, str(out.parent)) or exc from None
    _sweep_once(out.parent)
    media.extract_pcm(Path(probed.path), stream_index, out, expect=probed.state)
    return str(out)


def pcm_path(cache_dir: str, sha256: str, stream_index: int) -> Path:
    """Where a stream's PCM is cached: by content, stream and the extraction recipe's version."""
    return Path(cache_dir) / "pcm" / f"{sha256}-a{stream_index}.{PCM_VERSION}.s16"


PCM_VERSION = "v2"          # v2: in the video's time (media.PCM_FILTER); v1 files are never read
_swept: set[Path] = set()


def _sweep_once(folder: Path) -> None:
    """Remove the partial files killed runs left in the cache, once per process and folder."""
    if folder not in _swept:
        _swept.add(folder)
        media.sweep_partials(folder)
