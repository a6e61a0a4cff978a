"""The CPU fast path: the int8 ONNX export agrees with the torch module it was exported from."""

import numpy as np
import pytest
import torch

import timelines
from laughtrack.synthetic import demo, synth
from sensevoice_core import ModelUnavailableError, ScanOptions, load_model, scan, transcribe
from sensevoice_core.model import resolve_backend

# Stated tolerance of onnx-int8 against torch fp32 (fixture model, synthetic audio).
TAG_AGREEMENT = 0.99      # share of windows whose argmax tag is the same, per family
MAX_ABS_DP = 0.15         # largest |p_int8 - p_torch| of any tag in any window
P99_ABS_DP = 0.03         # 99th percentile of |p_int8 - p_torch|


def talk(seconds: float, seed: int) -> np.ndarray:
    """Speech, laughter, applause and silence at random lengths (not the accuracy set)."""
    rng = np.random.default_rng(seed)
    segs, t = [], 0.0
    while t < seconds - 1:
        kind = rng.choice(["speech", "speech", "laughter", "applause", "silence"])
        d = float(min(rng.uniform(0.6, 6.0), seconds - t))
        segs.append({"start_s": round(t, 2), "end_s": round(t + d, 2), "kind": str(kind)})
        t += d
    segs = [s for s in segs if s["kind"] != "silence"]
    return synth.render(synth.parse_timeline({"duration_s": seconds, "seed": seed, "segments": segs}))[0]


def audios():
    out = {name: synth.render(tl)[0] for name, tl in timelines.accuracy_timelines().items()}
    out.update({f"talk{seed}": talk(90.0, seed) for seed in (1, 2)})
    return out


@pytest.mark.parametrize("window, hop", [(0.5, 0.25), (1.0, 0.5)])
def test_int8_tags_and_probabilities_agree_with_torch(sv, sv_torch, window, hop):
    assert sv.backend == "onnx-int8" and sv_torch.backend == "torch"
    opts = ScanOptions(window_s=window, hop_s=hop)
    agree = {f: [] for f in ("language", "emotion", "event")}
    diffs = []
    for name, audio in audios().items():
        fast, ref = scan(sv, audio, opts), scan(sv_torch, audio, opts)
        np.testing.assert_array_equal(fast.start_s, ref.start_s)
        for family in agree:
            agree[family] += list(np.array(fast.tags(family)) == np.array(ref.tags(family)))
            diffs.append(np.abs(fast.probs[family] - ref.probs[family]).ravel())
    diffs = np.concatenate(diffs)
    for family, same in agree.items():
        assert np.mean(same) >= TAG_AGREEMENT, (family, np.mean(same), len(same))
    assert diffs.max() <= MAX_ABS_DP
    assert np.percentile(diffs, 99) <= P99_ABS_DP


def test_int8_transcripts_match_torch(sv, sv_torch):
    audio = synth.render(timelines.accuracy_timelines()["demo"])[0]
    chunks = [(t, audio[int(t * 16_000):int((t + 12) * 16_000)]) for t in range(0, len(audio) // 16_000 - 12, 12)]
    fast, ref = transcribe(sv, chunks), transcribe(sv_torch, chunks)
    same = [(a.language, a.emotion, a.event) == (b.language, b.emotion, b.event) for a, b in zip(fast, ref)]
    assert np.mean(same) >= TAG_AGREEMENT
    # greedy text: the same tokens on nearly every frame
    assert np.mean([a.raw_text == b.raw_text for a, b in zip(fast, ref)]) >= 0.8


def test_the_export_is_made_once_and_cached(tmp_path):
    first = load_model("fixture", device="cpu", cache_dir=tmp_path)
    files = list((tmp_path / "onnx").glob("*/model.int8.onnx"))
    assert len(files) == 1 and first.runner.path == files[0]
    mtime = files[0].stat().st_mtime_ns
    again = load_model("fixture", device="cpu", cache_dir=tmp_path)
    assert again.runner.path == files[0] and files[0].stat().st_mtime_ns == mtime


def test_backend_choice():
    cpu = torch.device("cpu")
    assert resolve_backend(cpu) == "onnx-int8"                      # onnxruntime is a dependency
    assert resolve_backend(cpu, dtype=torch.bfloat16) == "torch"     # a forced dtype means torch
    assert resolve_backend(torch.device("cuda")) == "torch"
    with pytest.raises(ModelUnavailableError, match="CPU only"):
        resolve_backend(torch.device("cuda"), "onnx-int8")
    with pytest.raises(ValueError, match="backend must be one of"):
        resolve_backend(cpu, "tensorrt")
