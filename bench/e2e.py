"""The two pipelines the benchmark compares, each run in a child process of its own.

    python -m bench.e2e seed|laughtrack --model DIR --work DIR VIDEO...   # prints one JSON line

seed: what the seed project did — decode each video with ffmpeg, then funasr
  `AutoModel.generate(batch_size_s=60, merge_vad=True, merge_length_s=15)` with funasr's defaults
  (ncpu=4, dither=1.0), read one tag per chunk and count laughter/applause chunks per minute. No
  VAD weights exist offline, so it gets the 15 s chunks merge_vad would produce (fixed cuts) in
  batches of 4 (= batch_size_s 60), and the rich text is post-processed as the seed did.
laughtrack: `analyze_batch` (probe → extract → scan → events → density → transcribe → store →
  report) on the real Prefect engine with its default backend, then the per-stage breakdown from
  Prefect's own task-run records and sensevoice_core's stage clock.

Both exclude one-time costs from × realtime and report them apart: model load (and, for
laughtrack, the Prefect server start and the int8 export, done once per model), measured on a
2-second warm-up clip.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from collections import defaultdict
from pathlib import Path

SR = 16_000


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_seed(model_dir: str, videos: list[str], work: Path, ncpu: int | None = None,
             limit_s: float | None = None, device: str = "cpu", batch: int = 4) -> dict:
    import numpy as np
    from funasr import AutoModel
    from funasr.utils.postprocess_utils import rich_transcription_postprocess

    from laughtrack import media
    from sensevoice_core.tags import parse_rich

    t0 = time.perf_counter()
    extra = {"ncpu": ncpu} if ncpu else {}   # unset: funasr's default, 4 threads
    auto = AutoModel(model=model_dir, disable_update=True, device=device, disable_pbar=True, disable_log=True, **extra)
    load_s = time.perf_counter() - t0
    auto.generate(input=[np.zeros(2 * SR, np.float32)], batch_size=batch, language="auto", use_itn=True)
    stages: dict[str, float] = defaultdict(float)
    model_work: dict[str, float] = defaultdict(float)
    audio_s, minutes = 0.0, {}
    t_all = time.perf_counter()
    for video in videos:
        t = time.perf_counter()
        audio = media.decode_audio(Path(video))
        if limit_s:
            audio = audio[: int(limit_s * SR)]
        stages["decode"] += time.perf_counter() - t
        audio_s += len(audio) / SR
        t = time.perf_counter()
        chunks = [audio[i:i + 15 * SR] for i in range(0, len(audio), 15 * SR)]
        model_work["model passes"] += len(chunks)
        model_work["model frames"] += sum(4 + -(-(1 + (len(c) - 400) // 160) // 6) for c in chunks)
        out = auto.generate(input=chunks, batch_size=batch, batch_size_s=15 * batch, merge_vad=True, merge_length_s=15,
                            language="auto", use_itn=True)
        stages["model"] += time.perf_counter() - t
        t = time.perf_counter()
        per_minute: dict[int, dict[str, float]] = defaultdict(lambda: {"Laughter": 0.0, "Applause": 0.0})
        for k, res in enumerate(out):
            text = rich_transcription_postprocess(res["text"])  # noqa: F841 — the seed kept it
            head = parse_rich(res["text"])
            event = head[0].event if head else None
            if event in ("Laughter", "Applause"):
                per_minute[k * 15 // 60][event] += len(chunks[k]) / SR
        minutes[video] = dict(per_minute)
        (work / "seed-results.json").write_text(json.dumps(minutes))
        stages["post"] += time.perf_counter() - t
    wall = time.perf_counter() - t_all
    return {"pipeline": "seed", "audio_s": audio_s, "wall_s": wall, "x_realtime": audio_s / wall,
            "load_s": load_s, "stages": dict(stages), "peak_rss_mb": peak_rss_mb(), "work": dict(model_work),
            "threads": _torch_threads(), "ncpu": ncpu or 4, "device": device, "batch": batch,
            "backend": f"torch fp32, funasr generate, batch {batch}, " + (
                f"ncpu={ncpu or '4 (default)'}" if device == "cpu" else device)}


def run_laughtrack(model_dir: str, videos: list[str], work: Path, device: str = "cpu") -> dict:
    from flows.analyze import analyze_batch
    from laughtrack import media
    from laughtrack.synthetic import synth
    from laughtrack.config import RunConfig
    from sensevoice_core.profile import CLOCK
    from tasks.model import get_model

    db, cache, reports = str(work / "laughtrack.duckdb"), str(work / "cache"), str(work / "reports")
    config = RunConfig(db=db, model=model_dir, device=device, cache_dir=cache, report_dir=reports)
    warm = work / "warmup.wav"
    media.write_media(synth.render(synth.parse_timeline({"duration_s": 2.0, "segments": [
        {"start_s": 0, "end_s": 2, "kind": "speech"}]}))[0], warm)
    model = get_model(config.engine())   # what the scan task will ask for: loaded once per process
    load_s = model.load_s
    rss_after_load = peak_rss_mb()
    t0 = time.perf_counter()
    analyze_batch(paths=[str(warm)], config=config)
    warmup_s = time.perf_counter() - t0   # Prefect server start + DB migrations + the first flow run
    CLOCK.reset()
    t0 = time.perf_counter()
    state = analyze_batch(paths=videos, config=config, return_state=True)
    wall = time.perf_counter() - t0
    result = state.result()
    assert len(result.analysed) == len(videos) and not result.failures, result
    truth_s, truth_chunks = _transcribe_truth_speech(model, videos, result, cache, device.split(":")[0])
    wall += truth_s
    audio_s = _audio_seconds(db, [a.analysis_id for a in result.analysed])
    tasks = _task_runs(state.state_details.flow_run_id)
    clock = CLOCK.snapshot()
    busy = _union(list(tasks.values()))
    per_task = {name: sum(b - a for a, b in spans) for name, spans in tasks.items()}
    scan_and_transcribe = per_task.get("scan", 0) + per_task.get("transcribe", 0)
    stages = {
        "decode": per_task.get("probe", 0) + per_task.get("extract", 0),
        "features": clock.get("features", 0.0),
        "model": clock.get("model", 0.0),
        "scan/transcribe other": max(0.0, scan_and_transcribe - clock.get("features", 0) - clock.get("model", 0)),
        "events/density": per_task.get("detect", 0),
        "db": per_task.get("store", 0) + per_task.get("record-failures", 0),
        "report": per_task.get("report", 0) + per_task.get("artifacts", 0),
        "orchestration": wall - truth_s - busy,
    }
    return {"pipeline": "laughtrack", "audio_s": audio_s, "wall_s": wall, "x_realtime": audio_s / wall,
            "load_s": load_s, "warmup_s": warmup_s, "stages": stages, "task_seconds": per_task,
            "peak_rss_mb": peak_rss_mb(), "rss_after_load_mb": rss_after_load, "work": CLOCK.counts(),
            "threads": model.runner.threads if hasattr(model.runner, "threads") else _torch_threads(),
            "torch_imported": "torch" in sys.modules, "funasr_imported": "funasr" in sys.modules,
            "backend": model.backend, "windows": _count(db, "windows"), "segments_by_flow": _count(db, "segments"),
            "truth_speech_chunks": truth_chunks, "truth_transcribe_s": truth_s, "device": str(model.device),
            "dtype": model.dtype, "model_spans": _merged(tasks.get("scan", []) + tasks.get("transcribe", [])),
            "peak_gpu_mem_mb": _peak_gpu_mb(device)}


def _merged(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The spans, overlaps merged (epoch seconds): when the model stage ran."""
    out: list[list[float]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [tuple(s) for s in out]


def _peak_gpu_mb(device: str) -> float | None:
    if not device.startswith("cuda"):
        return None
    import torch
    return torch.cuda.max_memory_allocated() / 2**20


def _transcribe_truth_speech(model, videos: list[str], result, cache: str, kind: str = "cpu") -> tuple[float, int]:
    """Transcribe the speech a real model would have found (the timeline's), as the flow's
    transcribe task does: random weights find no speech, so the flow alone would skip this work.
    Returns (seconds, chunks); its features and model time land in the stage clock."""
    from laughtrack import events, media
    from laughtrack.synthetic.synth import load_timeline
    from sensevoice_core import transcribe
    from laughtrack.config import TRANSCRIBE_BATCH

    t0 = time.perf_counter()
    n = 0
    for video in videos:
        tl = load_timeline(Path(video).with_suffix(".timeline.json"))
        speech = [events.Event("Speech", round(s.start_s * 1000), round(s.end_s * 1000), 1.0, 1.0)
                  for s in tl.segments if s.kind == "speech"]
        chunks = events.speech_chunks(speech, round(tl.duration_s * 1000))
        audio = media.decode_audio(Path(video))
        pieces = [(a / 1000, audio[a * SR // 1000:b * SR // 1000]) for a, b in chunks]
        transcribe(model, pieces, batch_size=TRANSCRIBE_BATCH[kind])
        n += len(pieces)
    return time.perf_counter() - t0, n


def _task_runs(flow_run_id) -> dict[str, list[tuple[float, float]]]:
    """name → [(start, end)] epoch seconds, from the Prefect server's task-run records."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    runs = []
    with get_client(sync_client=True) as client:
        while True:
            page = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
                                         limit=200, offset=len(runs))
            runs += page
            if len(page) < 200:
                break
    out: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for run in runs:
        if run.start_time and run.end_time:
            out[run.name.rsplit("-", 1)[0]].append((run.start_time.timestamp(), run.end_time.timestamp()))
    return dict(out)


def _union(span_lists: list[list[tuple[float, float]]]) -> float:
    """Seconds covered by at least one span (tasks run in threads side by side)."""
    spans = sorted(s for spans in span_lists for s in spans)
    total, cur_a, cur_b = 0.0, None, None
    for a, b in spans:
        if cur_b is None or a > cur_b:
            if cur_b is not None:
                total += cur_b - cur_a
            cur_a, cur_b = a, b
        else:
            cur_b = max(cur_b, b)
    if cur_b is not None:
        total += cur_b - cur_a
    return total


def _audio_seconds(db: str, analysis_ids: list[str]) -> float:
    import duckdb
    with duckdb.connect(db, read_only=True) as con:
        return con.execute("select sum(duration_s) from analyses where analysis_id in (select unnest(?))",
                           [analysis_ids]).fetchall()[0][0]


def _count(db: str, table: str) -> int:
    import duckdb
    with duckdb.connect(db, read_only=True) as con:
        return con.execute(f"select count(*) from {table}").fetchall()[0][0]


def _torch_threads() -> int:
    import torch
    return torch.get_num_threads()


def export_model(model_dir: str, work: Path) -> dict:
    """The one-time int8 export into the laughtrack run's cache (a process of its own, so that the
    measured run loads as every later run does)."""
    from laughtrack.config import RunConfig
    from sensevoice_core import load_model
    engine = RunConfig(model=model_dir, device="cpu", cache_dir=str(work / "cache")).engine()
    model = load_model(engine.model, device="cpu", backend=engine.backend, cache_dir=Path(engine.cache_dir))
    return {"pipeline": "export", "export_s": model.load_s, "peak_rss_mb": peak_rss_mb()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("pipeline", choices=["seed", "laughtrack", "export"])
    ap.add_argument("--model", required=True)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--ncpu", type=int, help="seed: funasr's ncpu (default: funasr's own, 4)")
    ap.add_argument("--limit-s", type=float, help="seed: only the first seconds of each video")
    ap.add_argument("--device", default="cpu", help="cpu | cuda")
    ap.add_argument("--batch", type=int, default=4, help="seed: funasr's batch_size (15 s chunks)")
    ap.add_argument("videos", nargs="*")
    args = ap.parse_intermixed_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    if args.pipeline == "seed":
        out = run_seed(args.model, args.videos, args.work, args.ncpu, args.limit_s, args.device, args.batch)
    elif args.pipeline == "export":
        out = export_model(args.model, args.work)
    else:
        out = run_laughtrack(args.model, args.videos, args.work, args.device)
    sys.stdout.flush()
    os.write(1, ("\n" + json.dumps(out) + "\n").encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
