"""probe and extract, a group of files per task: which audio streams each file has, and each
stream as 16 kHz mono PCM on disk. One file's failure is that file's result, never the group's."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from laughtrack import media, progress
from laughtrack.errors import captured
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
    out = Path(cache_dir) / "pcm" / f"{probed.sha256}-a{stream_index}.s16"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        media.extract_pcm(Path(probed.path), stream_index, out, expect=probed.state)
    return str(out)
