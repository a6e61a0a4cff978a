"""ffmpeg at the edge: write synthetic media, decode any media to 16 kHz mono float32."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import ffmpeg
import numpy as np

from laughtrack.errors import MediaError

SAMPLE_RATE = 16_000  # Hz
VIDEO_CONTAINERS = {".mp4", ".mkv", ".webm", ".mov", ".avi"}
# Audio codec per container; anything else lets ffmpeg pick its default.
_AUDIO_CODEC = {".mp4": "aac", ".mov": "aac", ".m4a": "aac", ".mkv": "aac", ".webm": "libopus",
                ".ogg": "libopus", ".opus": "libopus", ".wav": "pcm_s16le", ".flac": "flac",
                ".mp3": "libmp3lame", ".avi": "libmp3lame"}


def ffmpeg_binary() -> str:
    """The ffmpeg to run: the system one, else the binary the imageio-ffmpeg wheel ships."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg
        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError) as exc:
        raise MediaError(f"no ffmpeg found ({exc}); install it: pip install imageio-ffmpeg "
                         "or apt-get install ffmpeg") from None


def _run(args: list[str], path: Path, what: str, stdin: bytes | None = None) -> bytes:
    proc = subprocess.run([ffmpeg_binary(), "-nostdin", "-hide_banner", "-loglevel", "error", *args],
                          input=stdin, capture_output=True)
    if proc.returncode != 0:
        reason = proc.stderr.decode(errors="replace").strip().splitlines()
        raise MediaError(f"ffmpeg could not {what} '{path}': {reason[-1] if reason else 'exit ' + str(proc.returncode)}")
    return proc.stdout


def write_media(audio: np.ndarray, path: Path, sample_rate: int = SAMPLE_RATE) -> Path:
    """Write mono float32 audio to `path`; video containers get a cheap moving test picture."""
    path = Path(path)
    suffix = path.suffix.lower()
    duration = len(audio) / sample_rate
    pcm = ffmpeg.input("pipe:", format="f32le", ac=1, ar=sample_rate)
    streams = [pcm]
    kwargs = {"acodec": _AUDIO_CODEC.get(suffix)} if suffix in _AUDIO_CODEC else {}
    if suffix in VIDEO_CONTAINERS:
        picture = ffmpeg.input(f"testsrc2=size=160x90:rate=5:duration={duration:.3f}", format="lavfi")
        streams = [picture, pcm]
        kwargs["vcodec"] = "libvpx" if suffix == ".webm" else "mpeg4"
        kwargs["shortest"] = None
    out = ffmpeg.output(*streams, str(path), **kwargs).overwrite_output()
    _run(out.get_args(), path, "write", stdin=np.ascontiguousarray(audio, np.float32).tobytes())
    return path


def decode_audio(path: Path, stream_index: int | None = None) -> np.ndarray:
    """Decode one audio stream (default: the first) of any media file to 16 kHz mono float32."""
    path = Path(path)
    select = f"0:a:{stream_index}" if stream_index is not None else "0:a:0"
    args = ffmpeg.input(str(path)).output("pipe:", format="f32le", ac=1, ar=SAMPLE_RATE,
                                          map=select).get_args()
    return np.frombuffer(_run(args, path, "decode audio from"), np.float32).copy()
