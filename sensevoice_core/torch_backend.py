"""The torch side: the funasr module as a runner, and its int8 ONNX export (made once per model).

Only the torch backend and a first export import this (and torch); a cached export runs through
sensevoice_core/backends.py's OrtRunner alone.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from sensevoice_core.backends import QUERY_FRAMES, TAG_FRAMES, Encoded, Tags

log = logging.getLogger(__name__)


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
    """The funasr module on its own device: fp32 weights, bf16 under autocast when asked.

    bf16 as autocast, not as a bf16 module: funasr's SAN-M FSMN block multiplies its activations by
    a float mask, which turns a bf16 module's activations back to fp32 before its bf16 convolution
    ("expected scalar type Float but found BFloat16"; funasr's own `bf16=True` fails alike). Under
    autocast the convolutions and matmuls run in bf16 whatever their inputs' type."""

    name = "torch"
    batch_invariant = True      # a row's output does not depend on its batch mates (within 1e-4)

    def __init__(self, module: torch.nn.Module, device: str, dtype: str = "float32", compile: bool = False):
        self.head = _Head(module).eval()
        self.device = torch.device(device)
        self.autocast = dtype == "bfloat16"
        # torch.compile of the head, shapes bucketed (bucket()): a handful of graphs, each compiled once
        # per process and kept in inductor's FX graph cache on disk for the next process.
        self.forward = torch.compile(self.head, dynamic=False) if compile else self.head
        self.compiled = compile

    @torch.inference_mode()
    def __call__(self, x, lengths, queries: tuple[int, int, int, int], tags: Tags | None = None) -> Encoded:
        """x [B, T, D] (a tensor on the device, or numpy) and lengths [B]: the log-probs of `tags`
        (gathered on the device: only [B, K] per family comes back) and every frame's argmax."""
        x = torch.as_tensor(x, device=self.device, dtype=torch.float32)
        lengths = torch.as_tensor(lengths, device=self.device, dtype=torch.int64)
        rows = len(x)
        if self.compiled:
            x, lengths = bucket(x, lengths)
        q = torch.tensor([queries], device=self.device).expand(len(x), -1)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            qlp, ids, lens = self.forward(x, lengths, q)
        qlp, ids, lens = qlp[:rows], ids[:rows, : int(lengths[:rows].max()) + QUERY_FRAMES], lens[:rows]
        tag_logp = {f: qlp[:, frame][:, list(ids_)].float().cpu().numpy() for f, (frame, ids_) in (tags or {}).items()}
        return Encoded(tag_logp, ids.cpu().numpy(), lens.cpu().long().numpy())


BATCH_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096)


def bucket(x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad a batch to a few fixed shapes for a compiled head: rows to the next BATCH_BUCKETS size
    (padding rows of one frame, whose outputs are dropped), frames to 10 (a 0.6 s window), 16, or a
    multiple of 32 (transcript chunks). The head masks padded frames: the real rows are unchanged."""
    b, t, d = x.shape
    rows = next((n for n in BATCH_BUCKETS if n >= b), -(-b // BATCH_BUCKETS[-1]) * BATCH_BUCKETS[-1])
    frames = 10 if t <= 10 else 16 if t <= 16 else -(-t // 32) * 32
    if (rows, frames) == (b, t):
        return x, lengths
    padded = x.new_zeros((rows, frames, d))
    padded[:b, :t] = x
    return padded, torch.cat([lengths, lengths.new_ones(rows - b)])


def encode_features(module: torch.nn.Module, feats: list[torch.Tensor], language_query: int,
                    textnorm_query: int, device: torch.device | None = None,
                    dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """SenseVoiceSmall's forward up to the CTC log-softmax: [B, 4 + T, V] float32 and lengths.

    The same query construction as `SenseVoiceSmall.inference`: [language, event/emotion (1, 2),
    text-norm] embeddings in front of the features.
    """
    device = device or next(module.parameters()).device
    lengths = torch.tensor([len(f) for f in feats], device=device)
    x = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True).to(device=device, dtype=dtype)
    queries = module.embed(torch.tensor([[language_query, 1, 2, textnorm_query]], device=device))
    x = torch.cat([queries.to(dtype).expand(x.shape[0], -1, -1), x], dim=1)
    out, out_lens = module.encoder(x, lengths + QUERY_FRAMES)
    if isinstance(out, tuple):
        out = out[0]
    return module.ctc.log_softmax(out).float(), out_lens


def int8_export(module: torch.nn.Module, out: Path) -> Path:
    """Export `module` to int8 ONNX at `out` (atomically: a concurrent exporter writes the same bytes)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    log.info("exporting the model to int8 ONNX (once per model): %s", out)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        fp32, int8 = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        export_fp32(module, fp32)
        quantize_int8(fp32, int8)
        os.replace(int8, out)
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
