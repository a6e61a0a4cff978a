"""Two ways to run SenseVoiceSmall's encoder + CTC head on a batch of features.

- `torch`: the funasr module itself (CUDA in bf16, CPU in fp32): sensevoice_core/torch_backend.py.
- `onnx-int8`: the same forward exported with `torch.onnx` and quantized with onnxruntime's
  dynamic int8 (MatMul weights only; quantizing the FSMN depthwise Conv as well made it *slower*,
  bench/RESULTS.md). The default on CPU whenever onnxruntime is installed. Once the export is in
  the cache, running it needs neither torch nor funasr: this module imports only numpy.

Both answer the same question: log-probabilities over the whole vocabulary at the three tag query
frames, and the greedy (argmax) token of every frame — all that the scan and the transcripts read.
The export is cached per model (by its sha256 and its config.yaml) and per exporter/onnxruntime version.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

QUERY_FRAMES = 4        # language, emotion, event, text-norm
TAG_FRAMES = 3          # the frames whose distributions the scan reads (language, emotion, event)
EXPORT_VERSION = "2"    # bump when the exported graph or its cache key changes
EXPORT_NAME = "model.int8.onnx"


@dataclass(frozen=True, slots=True)
class Encoded:
    """One batch through the model (numpy, on the CPU): only what the scan and the transcripts read."""

    tag_logp: dict[str, np.ndarray]   # family → float32 [B, K]: log-probs of its tokens at its query frame
    ids: np.ndarray                   # int64 [B, 4 + T]: argmax token of every frame, query frames included
    lengths: np.ndarray               # int64 [B]: valid frames per row, query frames included


Tags = dict[str, tuple[int, tuple[int, ...]]]   # family → (query frame, token ids)


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
        self.path, self.threads = path, threads
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def __call__(self, x: np.ndarray, lengths: np.ndarray, queries: tuple[int, int, int, int],
                 tags: Tags | None = None) -> Encoded:
        """x [B, T, D] float32 and lengths [B]: the log-probs of `tags` and every frame's argmax."""
        q = np.tile(np.asarray([queries], np.int64), (len(x), 1))
        qlp, ids, lens = self.session.run(None, {"feats": np.asarray(x, np.float32),
                                                 "lengths": np.asarray(lengths, np.int64), "queries": q})
        tag_logp = {f: qlp[:, frame][:, list(ids_)] for f, (frame, ids_) in (tags or {}).items()}
        return Encoded(tag_logp, ids, lens.astype(np.int64, copy=False))


def onnx_available() -> bool:
    from importlib.util import find_spec
    return find_spec("onnx") is not None and find_spec("onnxruntime") is not None


def export_path(model_dir: Path, model_sha256: str, cache_dir: Path) -> Path:
    """Where the int8 export of this model lives: keyed by the model's sha256, its config.yaml
    (a dir without manifest is identified by model.pt alone), the exporter and onnxruntime."""
    config = hashlib.sha256((Path(model_dir) / "config.yaml").read_bytes()).hexdigest()
    key = hashlib.sha256(f"{model_sha256}|{config}|{EXPORT_VERSION}|{_version('torch')}|"
                         f"{_version('onnxruntime')}".encode()).hexdigest()[:24]
    return Path(cache_dir) / key / EXPORT_NAME


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "absent"
