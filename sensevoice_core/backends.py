"""Two ways to run SenseVoiceSmall's encoder + CTC head on a batch of features.

- `torch`: the funasr module itself (CUDA in bf16, CPU in fp32).
- `onnx-int8`: the same forward exported with `torch.onnx` and quantized with onnxruntime's
  dynamic int8 (MatMul weights only; quantizing the FSMN depthwise Conv as well made it *slower*,
  bench/RESULTS.md). The default on CPU whenever onnxruntime is installed: about 2x the fp32
  throughput on an AVX-512 VNNI CPU.

Both answer the same question: log-probabilities over the whole vocabulary at the three tag query
frames, and the greedy (argmax) token of every frame — all that the scan and the transcripts read.
The export is cached per model (by its sha256) and per exporter/onnxruntime version.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

QUERY_FRAMES = 4        # language, emotion, event, text-norm
TAG_FRAMES = 3          # the frames whose distributions the scan reads (language, emotion, event)
EXPORT_VERSION = "1"    # bump when the exported graph changes

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Encoded:
    """One batch through the model (CPU tensors)."""

    query_logp: torch.Tensor   # float32 [B, 3, V]: log-softmax at query frames 0 (language), 1, 2
    ids: torch.Tensor          # int64 [B, 4 + T]: argmax token of every frame, query frames included
    lengths: torch.Tensor      # int64 [B]: valid frames per row, query frames included


def _inputs(feats: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(f) for f in feats], dtype=torch.int64)
    return torch.nn.utils.rnn.pad_sequence(feats, batch_first=True), lengths


class _Head(torch.nn.Module):
    """queries + features → (query log-probs, argmax ids, lengths): the graph both backends run."""

    def __init__(self, module: torch.nn.Module):
        super().__init__()
        self.embed, self.encoder, self.ctc = module.embed, module.encoder, module.ctc

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor, queries: torch.Tensor):
        x = torch.cat([self.embed(queries).to(feats.dtype), feats], dim=1)
        out, out_lens = self.encoder(x, lengths + QUERY_FRAMES)
        if isinstance(out, tuple):
            out = out[0]
        logits = self.ctc.ctc_lo(out)          # argmax of the logits = argmax of the log-softmax
        query_logp = torch.log_softmax(logits[:, :TAG_FRAMES].float(), dim=-1)
        return query_logp, logits.argmax(-1), out_lens


class TorchRunner:
    """The funasr module on its own device and dtype."""

    name = "torch"
    batch_invariant = True      # a row's output does not depend on its batch mates (within 1e-4)

    def __init__(self, module: torch.nn.Module, device: torch.device, dtype: torch.dtype):
        self.head = _Head(module).eval()
        self.device, self.dtype = device, dtype

    @torch.inference_mode()
    def __call__(self, feats: list[torch.Tensor], queries: tuple[int, int, int, int]) -> Encoded:
        x, lengths = _inputs(feats)
        q = torch.tensor([queries], device=self.device).expand(len(feats), -1)
        qlp, ids, lens = self.head(x.to(self.device, self.dtype), lengths.to(self.device), q)
        return Encoded(qlp.cpu(), ids.cpu(), lens.cpu().long())


class OrtRunner:
    """The int8 ONNX export in an onnxruntime CPU session."""

    name = "onnx-int8"
    batch_invariant = False     # activation scales are per batch: mates move a row's p by up to ~0.1

    def __init__(self, path: Path, threads: int):
        import onnxruntime as ort
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        self.path = path
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def __call__(self, feats: list[torch.Tensor], queries: tuple[int, int, int, int]) -> Encoded:
        x, lengths = _inputs(feats)
        q = np.tile(np.asarray([queries], np.int64), (len(feats), 1))
        qlp, ids, lens = self.session.run(None, {"feats": x.float().numpy(), "lengths": lengths.numpy(), "queries": q})
        return Encoded(torch.from_numpy(qlp), torch.from_numpy(ids), torch.from_numpy(lens).long())


def onnx_available() -> bool:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def int8_export(module: torch.nn.Module, model_sha256: str, cache_dir: str | os.PathLike) -> Path:
    """The int8 ONNX file of `module` (identified by `model_sha256`) in `cache_dir`, exported on first use."""
    import onnxruntime
    key = hashlib.sha256(f"{model_sha256}|{EXPORT_VERSION}|{torch.__version__}|{onnxruntime.__version__}"
                         .encode()).hexdigest()[:24]
    out = Path(cache_dir) / key / "model.int8.onnx"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    log.info("exporting the model to int8 ONNX (once per model): %s", out)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        fp32, int8 = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        export_fp32(module, fp32)
        quantize_int8(fp32, int8)
        os.replace(int8, out)   # atomic: a concurrent exporter writes the same bytes
    return out


def export_fp32(module: torch.nn.Module, path: Path) -> None:
    """torch.onnx export (TorchScript exporter) of `_Head` with dynamic batch and time axes."""
    head = _Head(module).float().cpu().eval()
    feats = torch.randn(2, 30, int(module.encoder.encoders0[0].in_size))  # 560 = 80 mel x LFR 7
    lengths = torch.tensor([30, 19])
    queries = torch.tensor([[0, 1, 2, 15], [0, 1, 2, 15]])
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(
            head, (feats, lengths, queries), str(path), dynamo=False, opset_version=17,
            input_names=["feats", "lengths", "queries"], output_names=["query_logp", "ids", "out_lens"],
            dynamic_axes={"feats": {0: "batch", 1: "time"}, "lengths": {0: "batch"}, "queries": {0: "batch"},
                          "query_logp": {0: "batch"}, "ids": {0: "batch", 1: "frames"},
                          "out_lens": {0: "batch"}})


def quantize_int8(src: Path, dst: Path) -> None:
    """Dynamic int8 quantization of the MatMul weights (per tensor)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    root = logging.getLogger()
    was_disabled, root.disabled = root.disabled, True   # the quantizer logs every tensor at INFO
    try:
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"])
    finally:
        root.disabled = was_disabled
