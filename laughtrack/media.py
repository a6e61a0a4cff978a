"""ffmpeg at the edge: write synthetic media, decode any media to 16 kHz mono float32."""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import ffmpeg
import numpy as np

from laughtrack.errors import MediaError, NoAudioError, StillWritingError, disk_fault
from sensevoice_core.options import SAMPLE_RATE     # Hz: what the model hears

# Every decode ends in the video's time: a stream that starts late is padded with silence from 0,
# a gap inside it is filled, samples before 0 are dropped (ffmpeg's aresample, async=1).
PCM_FILTER = "aresample=async=1:first_pts=0"
PCM_RECIPE = f"s16le mono {SAMPLE_RATE} Hz, {PCM_FILTER}"     # part of the code version: it changes the numbers
LATE_START_S = 0.5       # a stream starting later than this is worth a line to the user
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
        kwargs.update(_video_codec(suffix), shortest=None)
    out = ffmpeg.output(*streams, str(path), **kwargs).overwrite_output()
    _run(out.get_args(), path, "write", stdin=np.ascontiguousarray(audio, np.float32).tobytes())
    return path


def _video_codec(suffix: str) -> dict:
    """What browsers play: H.264 when this ffmpeg has libx264 (VP8 in WebM, MPEG-4 in AVI)."""
    if suffix == ".webm":
        return {"vcodec": "libvpx"}
    if suffix != ".avi" and _has_encoder("libx264"):
        return {"vcodec": "libx264", "pix_fmt": "yuv420p", "preset": "ultrafast"}
    return {"vcodec": "mpeg4"}


@functools.lru_cache(maxsize=None)
def _has_encoder(name: str) -> bool:
    out = subprocess.run([ffmpeg_binary(), "-hide_banner", "-encoders"], capture_output=True, text=True)
    return any(line.split()[1:2] == [name] for line in out.stdout.splitlines() if line.startswith(" "))


def decode_audio(path: Path, stream_index: int | None = None) -> np.ndarray:
    """Decode one audio stream (default: the first) of any media file to 16 kHz mono float32."""
    path = Path(path)
    select = f"0:a:{stream_index}" if stream_index is not None else "0:a:0"
    args = ffmpeg.input(str(path)).output("pipe:", format="f32le", ac=1, ar=SAMPLE_RATE, af=PCM_FILTER,
                                          map=select).get_args()
    return np.frombuffer(_run(args, path, "decode audio from"), np.float32).copy()


# --- Reading user media -----------------------------------------------------------------------

HASH_BLOCK = 1 << 20          # bytes read per hashing step
PCM_CHUNK_SAMPLES = 30 * SAMPLE_RATE  # samples per extraction/read chunk: 30 s, ~1 MB as int16


@dataclass(frozen=True, slots=True)
class AudioStream:
    """One audio stream of a media file; `index` counts audio streams only (ffmpeg's `0:a:N`)."""

    index: int
    codec: str
    channels: int
    sample_rate: int
    duration_s: float | None
    language_tag: str | None
    start_s: float = 0.0          # where it starts in the video (extraction pads it with silence)


@dataclass(frozen=True, slots=True)
class MediaInfo:
    """What `probe` found: the container and every audio stream."""

    path: str
    container: str
    size_bytes: int
    duration_s: float | None
    audio: tuple[AudioStream, ...]
    other_streams: tuple[str, ...]    # e.g. ("video h264",), for error messages

    def expected_s(self, stream: AudioStream) -> float | None:
        """How long the stream's PCM should be, in the video's time (start offset included)."""
        if stream.duration_s:
            return stream.start_s + stream.duration_s
        return self.duration_s


@dataclass(frozen=True, slots=True)
class FileState:
    """What tells whether a file changed while it was read: its size and modification time."""

    size: int
    mtime_ns: int


def file_state(path: Path) -> FileState | None:
    """The file's (size, mtime), or None when it cannot be stat'ed."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return FileState(st.st_size, st.st_mtime_ns)


def _still_writing(path: Path) -> StillWritingError:
    return StillWritingError(f"'{path}': still being written (its size or modification time changed while it "
                             "was read); analyse it once the upload or recording is complete")


def fingerprint(path: Path, expect: FileState | None = None) -> tuple[str, FileState]:
    """(sha256 of the file's bytes, its state), reading at most the size seen at the start.

    A file that grows, shrinks or is touched while it is hashed (or that differs from `expect`)
    is refused with StillWritingError instead of being hashed forever or hashed half-written.
    """
    state = expect or file_state(path)
    if state is None:
        raise MediaError(f"'{path}': no such file")
    h, left = hashlib.sha256(), state.size
    with open(path, "rb") as f:
        while left > 0 and (block := f.read(min(HASH_BLOCK, left))):
            h.update(block)
            left -= len(block)
    if left > 0 or file_state(path) != state:
        raise _still_writing(path)
    return h.hexdigest(), state


def content_sha256(path: Path) -> str:
    """sha256 of the file's bytes (the identity of a video, not its name); see `fingerprint`."""
    return fingerprint(path)[0]


def probe_and_hash(path: Path) -> tuple[str, MediaInfo, FileState]:
    """Hash, then probe, a file that must not change meanwhile: (sha256, info, state).

    Hashing first, up to the size seen at the start, refuses a file still being written at disk
    speed, before a demuxer spends minutes on a file that keeps growing under it.
    """
    path = Path(path)
    check_readable(path)
    sha, state = fingerprint(path)
    try:
        info = probe(path)
    except MediaError:
        if file_state(path) != state:
            raise _still_writing(path) from None
        raise
    if file_state(path) != state:
        raise _still_writing(path)
    return sha, info, state


def check_readable(path: Path) -> None:
    """Raise MediaError with the reason a path cannot be analysed as a media file."""
    if not path.exists():
        raise MediaError(f"'{path}': " + ("broken symlink or symlink loop" if path.is_symlink() else "no such file"))
    if path.is_dir():
        raise MediaError(f"'{path}': is a directory, not a media file")
    if not path.is_file():
        raise MediaError(f"'{path}': not a regular file")
    if path.stat().st_size == 0:
        raise MediaError(f"'{path}': empty file (0 bytes)")
    if not os.access(path, os.R_OK):
        raise MediaError(f"'{path}': permission denied")


def probe(path: Path) -> MediaInfo:
    """Container and audio streams of a media file, read with PyAV; MediaError if it is not media."""
    path = Path(path)
    check_readable(path)
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            audio, other = [], []
            origin = container.start_time / 1_000_000 if container.start_time else 0.0
            for stream in container.streams:
                if stream.type == "audio":
                    audio.append(_audio_stream(len(audio), stream, origin))
                else:
                    other.append(f"{stream.type} {stream.codec_context.name if stream.codec_context else '?'}")
            duration = container.duration / 1_000_000 if container.duration else None
            fmt = container.format.name
    except (av.FFmpegError, UnicodeDecodeError, OSError) as exc:
        raise MediaError(f"'{path}': not a readable media file ({_reason(exc)})") from None
    if not audio:
        raise NoAudioError(f"no audio stream in '{path}' (streams: {', '.join(other) or 'none'})")
    return MediaInfo(str(path), fmt, path.stat().st_size, duration, tuple(audio), tuple(other))


def _audio_stream(index: int, stream, origin_s: float) -> AudioStream:
    ctx = stream.codec_context
    duration = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else None
    start = float(stream.start_time * stream.time_base) - origin_s if stream.start_time and stream.time_base else 0.0
    return AudioStream(index, ctx.name, ctx.channels, ctx.sample_rate, duration,
                       (stream.metadata or {}).get("language"), round(max(0.0, start), 3))


def _reason(exc: Exception) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return text.split(":")[0].strip() if isinstance(exc, av.FFmpegError) else text


def extract_pcm(path: Path, stream_index: int, out: Path, expect: FileState | None = None) -> int:
    """Stream one audio stream through ffmpeg into `out` as 16 kHz mono int16, in the video's time
    (PCM_FILTER); return samples.

    Memory is bounded by one chunk whatever the length of the video. `out` appears only when
    complete (written to a temporary name, then renamed; the temporary file goes on any exception,
    a full disk or an interrupt included), so it doubles as a content-hash cache, with its exact
    size recorded beside it (`pcm_ok`); with `expect`, a source that changed while it was decoded
    leaves no `out` behind.
    """
    path, out = Path(path), Path(out)
    if expect is not None and file_state(path) != expect:   # changed since it was hashed: no decoding
        raise _still_writing(path)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.part")
    try:
        samples = _decode_to(path, stream_index, tmp)
        if expect is not None and file_state(path) != expect:   # the bytes behind the hash changed
            raise _still_writing(path)
        _size_file(out).write_text(str(samples * 2))
        os.replace(tmp, out)
    except OSError as exc:
        raise disk_fault(exc, str(out.parent), f"the audio of '{path}'") or exc from None
    finally:
        tmp.unlink(missing_ok=True)
    return samples


def _decode_to(path: Path, stream_index: int, sink_path: Path) -> int:
    """ffmpeg's PCM of one stream into `sink_path`; MediaError with ffmpeg's reason if it fails."""
    args = (ffmpeg.input(str(path))
            .output("pipe:", format="s16le", acodec="pcm_s16le", ac=1, ar=SAMPLE_RATE, af=PCM_FILTER,
                    map=f"0:a:{stream_index}")
            .get_args())
    samples = 0
    with tempfile.TemporaryFile() as errors, open(sink_path, "wb") as sink:
        proc = subprocess.Popen([ffmpeg_binary(), "-nostdin", "-hide_banner", "-loglevel", "error", *args],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors)
        try:
            while block := proc.stdout.read(PCM_CHUNK_SAMPLES * 2):
                sink.write(block)
                samples += len(block) // 2
            code = proc.wait()
        finally:
            if proc.poll() is None:     # we stopped reading (a full disk, an interrupt): stop ffmpeg too
                proc.kill()
                proc.wait()
        errors.seek(0)
        reason = errors.read().decode(errors="replace").strip().splitlines()
    if code != 0:
        raise MediaError(f"'{path}': ffmpeg could not decode audio stream {stream_index}: "
                         f"{reason[-1] if reason else 'exit ' + str(code)}")
    return samples


def _size_file(pcm: Path) -> Path:
    return pcm.with_name(pcm.name + ".bytes")


def pcm_ok(pcm: Path, expect_s: float | None = None) -> bool:
    """Whether a cached PCM file is whole: its size is the one recorded when it was made (a file
    from before sizes were recorded: within a second or 2% of the probed length)."""
    try:
        size = Path(pcm).stat().st_size
    except OSError:
        return False
    try:
        return size == int(_size_file(Path(pcm)).read_text())
    except (OSError, ValueError):
        pass
    return expect_s is None or abs(size / 2 / SAMPLE_RATE - expect_s) <= max(1.0, 0.02 * expect_s)


def discard_pcm(pcm: Path) -> None:
    """Remove a cached PCM file and its recorded size."""
    Path(pcm).unlink(missing_ok=True)
    _size_file(Path(pcm)).unlink(missing_ok=True)


def sweep_partials(folder: Path, older_than_s: float = 3600.0) -> int:
    """Remove `.NAME.PID.part` files that a killed run left in `folder` (their process is gone, or
    they are older than `older_than_s`); return how many."""
    import time
    removed = 0
    for part in Path(folder).glob(".*.part"):
        pid = part.name.rsplit(".", 2)[-2]
        try:
            stale = not (pid.isdigit() and _alive(int(pid))) or time.time() - part.stat().st_mtime > older_than_s
            if stale:
                part.unlink()
                removed += 1
        except OSError:
            continue
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def pcm_chunks(pcm: Path, chunk_samples: int = PCM_CHUNK_SAMPLES) -> Iterator[np.ndarray]:
    """float32 chunks of an int16 PCM file (see `extract_pcm`), one chunk in memory at a time."""
    data = np.memmap(pcm, dtype=np.int16, mode="r") if Path(pcm).stat().st_size else np.zeros(0, np.int16)
    for i in range(0, len(data), chunk_samples):
        yield data[i:i + chunk_samples].astype(np.float32) / 32768.0


def pcm_slice(pcm: Path, start_ms: int, end_ms: int) -> np.ndarray:
    """float32 samples of [start_ms, end_ms) from an int16 PCM file."""
    if not Path(pcm).stat().st_size:
        return np.zeros(0, np.float32)
    data = np.memmap(pcm, dtype=np.int16, mode="r")
    a, b = start_ms * SAMPLE_RATE // 1000, end_ms * SAMPLE_RATE // 1000
    return data[a:b].astype(np.float32) / 32768.0
