"""SenseVoiceSmall, resolved once and loaded once per process.

    spec = resolve("iic/SenseVoiceSmall", device="auto")    # device, backend, precision, identity
    model = load(spec)                                       # or load_model(...) for both at once

`resolve` decides everything about a model before any weight is read (device.py: where and in
which precision; hub.py: where the files come from; identity.py: their verified sha256), so a
caller can key caches and analyses by the spec and load later, in another thread or process.

On the CPU with the int8 export already in the cache, loading reads the model dir's tokenizer,
CMVN and config and opens the ONNX session: no funasr, no torch, no checkpoint in memory. The torch
backend (CUDA, or CPU without onnxruntime) and the first export build the module through funasr;
it runs with fp32 weights, in bf16 under autocast where bf16 is asked (CUDA by default), with its
features computed on its own device (torch_frontend.py).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from sensevoice_core import backends
from sensevoice_core.device import BACKENDS, cpu_threads, resolve_backend, resolve_device, resolve_dtype
from sensevoice_core.errors import ModelIntegrityError, ModelUnavailableError
from sensevoice_core.frontend import Frontend, Tokenizer, tokenizer_file
from sensevoice_core.hub import DEFAULT_HUB_ID, FIXTURE_DIR, resolve_source
from sensevoice_core.identity import MANIFEST_NAME, model_identity, verify_manifest, write_manifest
from sensevoice_core.tags import EMOTIONS, EVENTS, FAMILIES, LANGUAGES, QUERY_FRAME, tag

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelSpec:
    """A model resolved, not loaded: what it is, where it runs, and how (hashable: a cache key)."""

    source: str             # what the user asked for: dir, hub id or "fixture"
    model_dir: Path
    sha256: str             # of the manifest (or of model.pt when there is none)
    device: str             # resolved: cpu, cuda, cuda:1
    backend: str            # torch | onnx-int8
    dtype: str              # float32 | bfloat16 (torch, autocast) | int8 (the ONNX export)
    threads: int
    cache_dir: Path         # the ONNX export and the identity cache
    compile: bool = False   # torch backend: torch.compile the encoder head (shapes bucketed)


def resolve(source: str | os.PathLike = DEFAULT_HUB_ID, device: str = "auto", backend: str = "auto", dtype=None,
            cache_dir: Path | None = None, threads: int | None = None, compile: bool = False) -> ModelSpec:
    """Decide device, backend, precision and identity (the manifest verified) without loading."""
    dev = resolve_device(device)
    which = resolve_backend(dev, backend, dtype)
    if compile and which != "torch":
        raise ValueError("torch.compile applies to the torch backend only (CUDA, or backend torch)")
    cache = Path(cache_dir) if cache_dir else Path.home() / ".cache" / "sensevoice_core"
    model_dir, digest = model_identity(source, cache)
    return ModelSpec(str(source), model_dir, digest, dev, which, resolve_dtype(dev, which, dtype),
                     threads or cpu_threads(), cache, compile)


@dataclass(frozen=True, slots=True)
class TagFamily:
    """The tokens of one query family that exist in this model's vocabulary."""

    names: tuple[str, ...]
    ids: tuple[int, ...]


@dataclass(frozen=True)
class SenseVoice:
    """A loaded SenseVoiceSmall: its runner and what the scan needs beside it."""

    spec: ModelSpec
    frontend: object            # Frontend (numpy) or TorchFrontend (on the model's device)
    tokenizer: Tokenizer        # the sentencepiece vocabulary
    families: dict[str, TagFamily]
    textnorm_ids: dict[str, int]
    blank_id: int
    vocab_size: int
    runner: object = None       # backends.OrtRunner or torch_backend.TorchRunner: encoder + CTC head
    module: object = None       # the funasr torch module (torch backend only)
    funasr_kwargs: dict = field(default_factory=dict)   # what funasr built it with (when it did)
    load_s: float = 0.0         # seconds load took

    @property
    def backend(self) -> str:
        return self.runner.name

    @property
    def device(self) -> str:
        return self.spec.device

    @property
    def dtype(self) -> str:
        return self.spec.dtype

    @property
    def source(self) -> str:
        return self.spec.source

    @property
    def model_dir(self) -> Path:
        return self.spec.model_dir

    @property
    def model_sha256(self) -> str:
        return self.spec.sha256

    @property
    def tag_queries(self) -> dict[str, tuple[int, tuple[int, ...]]]:
        """family → (its query frame, its token ids): what a runner returns log-probs of."""
        return {f: (QUERY_FRAME[f], fam.ids) for f, fam in self.families.items()}


def load_model(source: str | os.PathLike = DEFAULT_HUB_ID, device: str = "auto", dtype=None,
               threads: int | None = None, backend: str = "auto", cache_dir: Path | None = None,
               compile: bool = False) -> SenseVoice:
    """Load SenseVoiceSmall from a local dir, `"fixture"`, or a hub id: `load(resolve(...))`."""
    return load(resolve(source, device, backend, dtype, cache_dir, threads, compile))


def load(spec: ModelSpec) -> SenseVoice:
    """The model a spec names, on its device, in its precision."""
    t0 = time.perf_counter()
    config = _read_config(spec.model_dir)
    tokenizer = Tokenizer(tokenizer_file(spec.model_dir, config))
    frontend = _frontend(spec.model_dir, config)
    parts = dict(spec=spec, tokenizer=tokenizer, families=tag_families(tokenizer),
                 blank_id=int((config.get("model_conf") or {}).get("blank_id", 0)),
                 textnorm_ids={n: _piece_id(tokenizer, tag(n)) for n in ("withitn", "woitn")},
                 vocab_size=tokenizer.get_vocab_size())
    if spec.backend == "onnx-int8":
        onnx = backends.export_path(spec.model_dir, spec.sha256, spec.cache_dir / "onnx")
        kwargs = {} if onnx.is_file() else _export(spec.model_dir, onnx, spec.threads)
        return SenseVoice(**parts, frontend=frontend, runner=backends.OrtRunner(onnx, spec.threads),
                          funasr_kwargs=kwargs, load_s=time.perf_counter() - t0)
    from sensevoice_core.torch_backend import TorchRunner
    from sensevoice_core.torch_frontend import TorchFrontend
    module, kwargs = _build_checked(spec.model_dir, spec.device, spec.threads)
    module.to(device=spec.device).eval()      # fp32 weights; bf16 is autocast (device.py)
    return SenseVoice(**parts, frontend=TorchFrontend(frontend, spec.device),
                      runner=TorchRunner(module, spec.device, spec.dtype, spec.compile), module=module,
                      funasr_kwargs=kwargs,
                      load_s=time.perf_counter() - t0)


def _frontend(model_dir: Path, config: dict) -> Frontend:
    try:
        return Frontend.from_model_dir(model_dir, config)
    except (OSError, ValueError) as exc:
        raise ModelUnavailableError(str(exc)) from None


def _read_config(model_dir: Path) -> dict:
    import yaml
    return yaml.safe_load((model_dir / "config.yaml").read_text()) or {}


def _export(model_dir: Path, onnx: Path, threads: int) -> dict:
    """Build the module through funasr, check it, export it to int8 ONNX, and let it go."""
    from sensevoice_core.torch_backend import int8_export
    module, kwargs = _build_checked(model_dir, "cpu", threads)
    int8_export(module.float().eval(), onnx)
    return kwargs


def _build_checked(model_dir: Path, device: str, threads: int):
    module, kwargs = _build_with_funasr(model_dir, device, threads)
    check_weights(module, model_dir / "model.pt")
    kwargs["frontend"].dither = 0.0  # funasr defaults to 1.0: features would vary run to run
    return module, kwargs


def _build_with_funasr(model_dir: Path, device: str, threads: int):
    with _quiet_funasr():
        from funasr import AutoModel
        auto = AutoModel(model=str(model_dir), disable_update=True, device=str(device), trust_remote_code=False,
                         ncpu=threads, disable_pbar=True, disable_log=True)
    return auto.model, auto.kwargs


@contextlib.contextmanager
def _quiet_funasr():
    """funasr prints an ffmpeg notice on import and logs at INFO, and the pydub it imports warns
    that no ffmpeg is on PATH; laughtrack feeds it arrays, so none of them applies."""
    root = logging.getLogger()
    level = root.level
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        silence_pydub()
        try:
            yield
        finally:
            root.setLevel(level)


def silence_pydub() -> None:
    """pydub warns on import when no `ffmpeg` is on PATH (and that audioop is deprecated); it is
    imported by funasr and gradio, never used to decode here (laughtrack's ffmpeg does)."""
    warnings.filterwarnings("ignore", message="Couldn't find ffmpeg or avconv", category=RuntimeWarning)
    warnings.filterwarnings("ignore", message="'audioop' is deprecated", category=DeprecationWarning)


def check_weights(module, weights: Path) -> None:
    """Refuse a checkpoint whose tensors do not fit the architecture (funasr logs it at INFO only)."""
    import torch
    state = torch.load(weights, map_location="cpu", mmap=True, weights_only=True)
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    wrong = [f"{k} {tuple(state[k].shape)}≠{tuple(v.shape)}" for k, v in own.items()
             if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if missing or wrong:
        detail = "; ".join(wrong[:3] + [f"missing {k}" for k in missing[:3]])
        raise ModelIntegrityError(f"'{weights}' does not fit config.yaml's architecture "
                                  f"({len(missing)} missing, {len(wrong)} mis-shaped: {detail})")


def _piece_id(tokenizer, piece: str) -> int | None:
    sp = tokenizer.sp
    i = sp.piece_to_id(piece)
    return None if i == sp.unk_id() and piece != sp.id_to_piece(i) else int(i)


def tag_families(tokenizer) -> dict[str, TagFamily]:
    """Look every language/emotion/event tag up in the vocabulary (never hard-coded ids)."""
    families = {}
    for family, names in FAMILIES.items():
        pairs = [(n, _piece_id(tokenizer, tag(n))) for n in names]
        pairs = [(n, i) for n, i in pairs if i is not None]
        families[family] = TagFamily(tuple(n for n, _ in pairs), tuple(i for _, i in pairs))
    return families


__all__ = ["SenseVoice", "ModelSpec", "TagFamily", "load", "load_model", "resolve", "resolve_backend", "BACKENDS",
           "resolve_source", "write_manifest", "verify_manifest", "model_identity", "check_weights", "FIXTURE_DIR",
           "DEFAULT_HUB_ID", "MANIFEST_NAME", "LANGUAGES", "EMOTIONS", "EVENTS", "ModelIntegrityError",
           "ModelUnavailableError"]
