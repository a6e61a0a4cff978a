"""The device path, on the CPU (issue 22): features once per stream, gathered per window, equal to
the window-by-window recipe; the torch frontend (lhotse's Kaldi fbank) equal to kaldi-native-fbank;
bf16 (autocast over fp32 weights, as on CUDA) agreeing with fp32. The CUDA code path is this code
with device="cuda": nothing here is skipped on a machine without a GPU."""

from __future__ import annotations

import numpy as np
import pytest

from laughtrack.synthetic import synth
from sensevoice_core import ScanOptions, load_model, scan, transcribe
from sensevoice_core.stream import stream_windows

SR = 16_000
TALK = {"duration_s": 47.3, "seed": 5, "segments": [
    {"start_s": 0, "end_s": 12, "kind": "speech"}, {"start_s": 12, "end_s": 15.5, "kind": "laughter"},
    {"start_s": 16, "end_s": 30, "kind": "speech"}, {"start_s": 31, "end_s": 36, "kind": "applause"},
    {"start_s": 36, "end_s": 44, "kind": "speech"}, {"start_s": 44.2, "end_s": 47, "kind": "laughter"}]}


@pytest.fixture(scope="module")
def talk() -> np.ndarray:
    return synth.render(synth.parse_timeline(TALK))[0]


@pytest.fixture(scope="module")
def sv_bf16(cache_dir):
    """The CUDA recipe on the CPU: the torch backend, bf16 autocast, features on the torch device."""
    return load_model("fixture", device="cpu", backend="torch", dtype="bfloat16", cache_dir=cache_dir)


def chunked(audio: np.ndarray, size: int):
    return [audio[i:i + size] for i in range(0, len(audio), size)]


def as_numpy(x) -> np.ndarray:
    return x.cpu().numpy() if hasattr(x, "cpu") else np.asarray(x)


@pytest.mark.parametrize("window, stride, between", [(9600, 9600, True), (9600, 4800, False), (16000, 8000, False),
                                                     (9600, 9600, False), (5000, 2500, True)])
@pytest.mark.parametrize("chunk", [7 * SR + 3, 30 * SR])
def test_stream_features_equal_the_window_by_window_recipe(sv, sv_bf16, talk, window, stride, between, chunk):
    """Every window (the odd ones an adaptive scan may ask for, the tail, off-grid sizes) gets the
    features its own samples give, from frames computed once per stream: exactly on the numpy
    path; through lhotse's torch fbank within 1e-3 but for a few values of near-silent frames,
    where kaldi-native-fbank's own float32 arithmetic is further from the exact value (below)."""
    for frontend, exact in ((sv.frontend, True), (sv_bf16.frontend, False)):
        got = list(stream_windows(frontend, chunked(talk, chunk), window, stride, between))
        starts = [w.start for w in got]
        expect = list(range(0, len(talk) - window + 1, stride))
        assert starts[:len(expect)] == expect and got[-1].start + got[-1].length == len(talk)
        pairs = []
        for w in got:
            pairs.append((as_numpy(w.feats), sv.frontend(talk[w.start:w.start + w.length])))
            if between and w.start >= window and w.start % stride == 0:     # not the tail (off the stride)
                pairs.append((as_numpy(w.between), sv.frontend(talk[w.start - window // 2:w.start + window // 2])))
            else:
                assert w.between is None
        assert all(a.shape == b.shape for a, b in pairs)
        diff = np.concatenate([np.abs(a - b).ravel() for a, b in pairs])
        if exact:
            assert diff.max() == 0.0
        else:
            assert np.quantile(diff, 0.999) <= 1e-3 and diff.max() <= 5e-3, (np.quantile(diff, 0.999), diff.max())


def test_the_torch_fbank_is_closer_to_the_exact_value_than_kaldi_native_fbank(sv, sv_bf16, talk):
    """Where the two frontends differ by more than 1e-3 (a few near-silent frames), the float64
    value of the same recipe sides with the torch (lhotse) frames: the difference is knf's rounding."""
    import torch
    knf, ours = sv.frontend.fbank(talk), sv_bf16.frontend.fbank(talk).numpy()
    layer = sv_bf16.frontend.layer
    exact = layer.double()((torch.as_tensor(talk, dtype=torch.float64) * 32768)[None])[0].numpy()
    layer.float()
    assert np.abs(ours - exact).max() < np.abs(knf - exact).max()
    assert np.mean(np.abs(ours - knf) > 1e-3) < 1e-4


def test_a_clip_shorter_than_a_window_and_an_empty_one(sv, sv_bf16):
    for frontend in (sv.frontend, sv_bf16.frontend):
        short = np.random.default_rng(1).standard_normal(300).astype(np.float32) * 0.1
        (only,) = stream_windows(frontend, [short], 9600, 9600, True)
        assert (only.start, only.length) == (0, 300) and only.between is None
        np.testing.assert_allclose(as_numpy(only.feats), sv.frontend(np.pad(short, (0, 100))), atol=1e-3)
        assert list(stream_windows(frontend, [np.zeros(0, np.float32)], 9600, 9600, True)) == []


def test_bf16_on_the_cpu_agrees_with_fp32(sv_torch, sv_bf16, talk):
    """What `--device cuda` runs, run on the CPU: the crash of the bf16 module is gone, and its
    numbers agree with the fp32 reference (event tags on ≥ 95% of windows, probabilities within 0.05)."""
    options = ScanOptions(window_s=0.6, hop_s=0.3)
    ref, got = scan(sv_torch, talk, options), scan(sv_bf16, talk, options)
    assert sv_bf16.dtype == "bfloat16" and sv_bf16.runner.autocast and sv_bf16.frontend.device.type == "cpu"
    assert np.array_equal(ref.start_s, got.start_s)
    assert np.mean(np.array(ref.tags("event")) == np.array(got.tags("event"))) >= 0.95
    for family in ("event", "emotion"):
        assert np.abs(ref.probs[family] - got.probs[family]).max() <= 0.05, family
    said = transcribe(sv_bf16, [(0.0, talk[:12 * SR]), (16.0, talk[16 * SR:30 * SR])])
    assert [t.language for t in said] == [t.language for t in transcribe(sv_torch, [(0.0, talk[:12 * SR]),
                                                                                  (16.0, talk[16 * SR:30 * SR])])]


def test_the_device_frontend_scan_equals_the_reference_scan(sv_torch, talk, cache_dir):
    """The torch backend now takes its features from the torch frontend (lhotse, on its device):
    the same events as the numpy frontend's features give (adaptive scan, default windows)."""
    options = ScanOptions(window_s=0.6, hop_s=0.3, adaptive=True)
    on_device = scan(sv_torch, talk, options)
    numpy_features = load_model("fixture", device="cpu", backend="torch", cache_dir=cache_dir)
    object.__setattr__(numpy_features, "frontend", numpy_features.frontend.base)    # kaldi-native-fbank, numpy
    reference = scan(numpy_features, talk, options)
    assert np.array_equal(on_device.start_s, reference.start_s)
    assert np.abs(on_device.probs["event"] - reference.probs["event"]).max() <= 1e-3


@pytest.mark.timeout(600)
def test_the_flow_runs_the_cuda_recipe_on_the_cpu(tmp_path, prefect_server, cache_dir):
    """`analyze` with the torch backend in bf16 (LAUGHTRACK_PRECISION=bf16): the CUDA configuration
    end to end through the Prefect flow on this CPU — its numbers within a second a minute of the
    fp32 torch run's, recorded as `cpu torch bf16`."""
    from flows.analyze import analyze_batch
    from laughtrack.config import RunConfig
    from laughtrack.store import open_store
    video = tmp_path / "talk.mp4"
    synth.render_to(synth.parse_timeline(TALK), video)
    minutes = {}
    for precision in ("bf16", "fp32"):
        config = RunConfig(db=str(tmp_path / f"{precision}.duckdb"), model="fixture", device="cpu", backend="torch",
                           precision=precision, cache_dir=str(cache_dir))
        result = analyze_batch(paths=[str(video)], config=config)
        assert not result.failures and len(result.analysed) == 1, result.failures
        store = open_store(config.store)
        assert store.query("SELECT device FROM analyses")[1] == [(f"cpu torch {precision}",)]
        minutes[precision] = store.query("SELECT laughter_s, applause_s, speech_s FROM minute_density ORDER BY minute")[1]
    assert len(minutes["bf16"]) == len(minutes["fp32"])
    for a, b in zip(minutes["bf16"], minutes["fp32"]):
        assert max(abs(x - y) for x, y in zip(a, b)) <= 1.0, (a, b)


def test_bucketed_shapes_keep_the_real_rows():
    import torch
    from sensevoice_core.torch_backend import bucket
    x, lengths = torch.randn(5, 10, 560), torch.tensor([10, 10, 9, 10, 7])
    padded, lens = bucket(x, lengths)
    assert padded.shape == (16, 10, 560) and torch.equal(padded[:5], x) and lens[:5].tolist() == [10, 10, 9, 10, 7]
    assert bucket(torch.randn(3, 240, 560), torch.tensor([240, 200, 5]))[0].shape == (4, 256, 560)
    assert bucket(torch.randn(64, 10, 560), torch.full((64,), 10))[0].shape == (64, 10, 560)


@pytest.mark.timeout(900)
def test_a_compiled_head_gives_the_eager_numbers(sv_torch, talk, cache_dir):
    """LAUGHTRACK_COMPILE=on (torch backend): torch.compile of the head over bucketed shapes, on the
    CPU here as it would be on CUDA; the same probabilities as the eager module."""
    compiled = load_model("fixture", device="cpu", backend="torch", cache_dir=cache_dir, compile=True)
    options = ScanOptions(window_s=0.6, hop_s=0.3, adaptive=True, batch_size=64)
    ref, got = scan(sv_torch, talk[:20 * SR], options), scan(compiled, talk[:20 * SR], options)
    assert compiled.runner.compiled and np.array_equal(ref.start_s, got.start_s)
    assert np.abs(ref.probs["event"] - got.probs["event"]).max() <= 1e-4
    assert ref.text == got.text
