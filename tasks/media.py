"""probe and extract: which audio streams a file has, and each as 16 kHz mono PCM on disk."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prefect import task

from laughtrack import media, progress


@dataclass(frozen=True)
class ProbedFile:
    """A media file, its content hash, and its streams."""

    path: str
    sha256: str
    info: media.MediaInfo


@task(name="probe", retries=0)
def probe_media(path: str) -> ProbedFile:
    """Hash the file's bytes and list its audio streams (MediaError for anything unreadable)."""
    progress.report(path, "probe")
    info = media.probe(Path(path))
    return ProbedFile(path=path, sha256=media.content_sha256(Path(path)), info=info)


@task(name="extract", retries=0)
def extract_audio(probed: ProbedFile, stream_index: int, cache_dir: str) -> str:
    """PCM of one stream, cached by content hash: a second run (or a renamed copy) skips ffmpeg."""
    progress.report(probed.path, "extract")
    out = Path(cache_dir) / "pcm" / f"{probed.sha256}-a{stream_index}.s16"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        media.extract_pcm(Path(probed.path), stream_index, out)
    return str(out)
