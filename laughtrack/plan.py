"""From a probed file to the jobs of one run: which streams, under which identity. Pure, no I/O
beyond the size of an extracted PCM file."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from laughtrack.identity import ConfigKey, video_id
from laughtrack.errors import LaughtrackError
from laughtrack.media import SAMPLE_RATE, AudioStream
from laughtrack.records import Extracted, Job, Lineage, Probed, Video


def streams(probed: Probed, choice: str) -> list[AudioStream]:
    """The audio streams `choice` ("all" or an index) selects; LaughtrackError for a missing one."""
    if choice == "all":
        return list(probed.info.audio)
    index = int(choice)
    if index >= len(probed.info.audio):
        raise LaughtrackError(f"'{probed.path}' has {len(probed.info.audio)} audio stream(s); "
                              f"--stream {index} does not exist")
    return [probed.info.audio[index]]


def jobs(probed: Probed, choice: str, key: ConfigKey, model_id: str, device: str) -> list[Job]:
    """One job per selected stream of `probed`, identified by content, stream and `key`."""
    vid = video_id(probed.sha256)
    info = probed.info
    video = Video(vid, probed.sha256, info.size_bytes, info.container, info.duration_s)
    started = datetime.now(timezone.utc)
    out = []
    for s in streams(probed, choice):
        lineage = Lineage(analysis_id=key.analysis(probed.sha256, s.index).analysis_id, video_id=vid,
                          stream_index=s.index, model_id=model_id, model_sha256=key.model_sha256,
                          params_json=key.params_json, code_version=key.code_version, config_key=key.id,
                          device=device, started_at=started)
        out.append(Job(probed.path, probed, video, s, lineage))
    return out


def extracted(job: Job, pcm: str) -> Extracted:
    """The job with its PCM file and the stream's decoded length."""
    return Extracted(job, pcm, Path(pcm).stat().st_size // 2 * 1000 // SAMPLE_RATE)


def split(items: list, parts: int, most: int) -> list[list]:
    """`items` as consecutive runs of at most `most`, and at least `parts` runs when there are as
    many items (so that `parts` workers all have one)."""
    size = max(1, min(most, -(-len(items) // max(1, parts))))
    return [items[i:i + size] for i in range(0, len(items), size)]


def by_audio(jobs: list[Job], seconds: float, most: int) -> list[list[Job]]:
    """Consecutive runs of streams holding at most `seconds` of audio (as probed) and `most` streams
    (a longer stream, or one whose length the container does not state, is a run of its own): one
    model task per run, however short or long the files."""
    runs: list[list[Job]] = []
    audio_ms = 0
    for job in jobs:
        expected = job.probed.info.expected_s(job.audio)
        ms = round(expected * 1000) if expected else round(seconds * 1000)
        if not runs or len(runs[-1]) == most or audio_ms + ms > seconds * 1000:
            runs.append([])
            audio_ms = 0
        runs[-1].append(job)
        audio_ms += ms
    return runs
