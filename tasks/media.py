"""probe and extract: which audio streams a file has, and each as 16 kHz mono PCM on disk."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from laughtrack import media, progress
from laughtrack.records import Probed, Stage


@task(name="probe", retries=0, cache_policy=NO_CACHE)
def probe_media(path: str) -> Probed:
    """Hash the file's bytes and list its audio streams (MediaError for anything unreadable, or a
    file still being written)."""
    progress.report(path, Stage.PROBE)
    sha, info, state = media.probe_and_hash(Path(path))
    return Probed(path=path, sha256=sha, info=info, state=state)


@task(name="extract", retries=0, cache_policy=NO_CACHE)
def extract_audio(probed: Probed, stream_index: int, cache_dir: str) -> str:
    """PCM of one stream, cached by content hash: a second run (or a renamed copy) skips ffmpeg."""
    progress.report(probed.path, Stage.EXTRACT)
    out = Path(cache_dir) / "pcm" / f"{probed.sha256}-a{stream_index}.s16"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        media.extract_pcm(Path(probed.path), stream_index, out, expect=probed.state)
    return str(out)
