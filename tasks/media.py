"""probe and extract: which audio streams a file has, and each as 16 kHz mono PCM on disk."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prefect import task

from laughtrack import media, progress
from laughtrack.errors import MediaError


@dataclass(frozen=True)
class ProbedFile:
    """A media file, its content hash, and its streams."""

    path: str
    sha256: str
    info: media.MediaInfo
    state: tuple[int, int] | None = None   # (size, mtime ns) when hashed


@task(name="probe", retries=0)
def probe_media(path: str) -> ProbedFile:
    """Hash the file's bytes and list its audio streams (MediaError for anything unreadable)."""
    progress.report(path, "probe")
    before = media.file_state(Path(path))
    info = media.probe(Path(path))
    sha = media.content_sha256(Path(path))
    if media.file_state(Path(path)) != before:
        raise MediaError(f"'{path}': still being written (size or time changed while reading); "
                         "analyse it once the upload is complete")
    return ProbedFile(path=path, sha256=sha, info=info, state=before)


@task(name="extract", retries=0)
def extract_audio(probed: ProbedFile, stream_index: int, cache_dir: str) -> str:
    """PCM of one stream, cached by content hash: a second run (or a renamed copy) skips ffmpeg."""
    progress.report(probed.path, "extract")
    out = Path(cache_dir) / "pcm" / f"{probed.sha256}-a{stream_index}.s16"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        media.extract_pcm(Path(probed.path), stream_index, out)
        if media.file_state(Path(probed.path)) != probed.state:   # the bytes behind the hash changed
            out.unlink(missing_ok=True)
            raise MediaError(f"'{probed.path}': changed while it was being decoded; analyse it once "
                             "the upload is complete")
    return str(out)
