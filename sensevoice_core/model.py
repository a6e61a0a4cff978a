"""Load SenseVoiceSmall from a local dir or a hub id, once per process.

On the CPU with the int8 export already in the cache, loading reads the model dir's tokenizer,
CMVN and config and opens the ONNX session: no funasr, no torch, no checkpoint in memory. The torch
backend (CUDA, or CPU without onnxruntime) and the first export build the module through funasr.

A local dir loads with no network at all (`disable_update=True`, no VAD model). A hub id is
looked up in the ModelScope / Hugging Face caches first; if it is not cached and the hub does not
answer within HUB_PROBE_TIMEOUT_S, loading fails at once with the commands that fix it, instead
of funasr's ~20 s of retries and a misleading message.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import socket
import sys
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from sensevoice_core import backends
from sensevoice_core.errors import ModelIntegrityError, ModelUnavailableError
from sensevoice_core.frontend import Frontend, Tokenizer, tokenizer_file
from sensevoice_core.tags import EMOTIONS, EVENTS, FAMILIES, LANGUAGES, tag

log = logging.getLogger(__name__)

FIXTURE_DIR = Path(__file__).resolve().parent / "fixture"
MANIFEST_NAME = "manifest.sha256"
DEFAULT_HUB_ID = "iic/SenseVoiceSmall"
HUB_PROBE_TIMEOUT_S = 1.5
# Hub id prefix → (funasr hub name, host to probe).
_HUBS = {"FunAudioLLM/": ("hf", "huggingface.co"), "": ("ms", "www.modelscope.cn")}
BACKENDS = ("auto", "torch", "onnx-int8")
_REQUIRED_FILES = ("config.yaml", "model.pt", "am.mvn", "configuration.json")
IDENTITY_CACHE = "model-identity.json"   # in the cache dir: model dir → (file stats, sha256)
_NVIDIA = ("/dev/nvidia0", "/dev/nvidiactl", "/proc/driver/nvidia/version", "/dev/dxg")   # dxg: WSL2


@dataclass(frozen=True, slots=True)
class TagFamily:
    """The tokens of one query family that exist in this model's vocabulary."""

    names: tuple[str, ...]
    ids: tuple[int, ...]


@dataclass(frozen=True)
class SenseVoice:
    """A loaded SenseVoiceSmall: its runner and what the scan needs beside it."""

    frontend: Frontend          # WavFrontend's features, dither 0 (reproducible)
    tokenizer: Tokenizer        # the sentencepiece vocabulary
    families: dict[str, TagFamily]
    textnorm_ids: dict[str, int]
    blank_id: int
    vocab_size: int
    device: str                 # "cpu", "cuda", "cuda:1"
    dtype: str                  # what the weights run in: "int8", "float32", "bfloat16"
    source: str                 # what the user asked for: dir, hub id or "fixture"
    model_dir: Path
    model_sha256: str           # sha256 of the manifest (or of model.pt when there is none)
    runner: object = None       # backends.OrtRunner or torch_backend.TorchRunner: encoder + CTC head
    module: object = None       # the funasr torch module (torch backend only)
    funasr_kwargs: dict = field(default_factory=dict)   # what funasr built it with (when it did)
    load_s: float = 0.0         # seconds load_model took

    @property
    def backend(self) -> str:
        return self.runner.name


def cuda_available(probe_only: bool = True) -> bool:
    """Whether torch sees CUDA. For `auto` (probe_only) on Linux without an NVIDIA (or WSL2) device
    node: False without importing torch; an explicit `cuda` always asks torch."""
    if probe_only and sys.platform.startswith("linux") and not any(os.path.exists(p) for p in _NVIDIA):
        return False
    import torch
    return torch.cuda.is_available()


def resolve_device(device: str = "auto") -> str:
    """`auto` → CUDA when present, else CPU; an explicit `cuda` without CUDA is an error."""
    device = str(device)
    if device == "auto":
        return "cuda" if cuda_available() else "cpu"
    if device.startswith("cuda") and not cuda_available(probe_only=False):
        raise ModelUnavailableError(f"device {device!r} asked for but torch sees no CUDA; use --device cpu or auto")
    return device


def cpu_threads() -> int:
    """Cores this process may use (funasr would otherwise take 4 threads on any machine)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def resolve_backend(device: str, backend: str = "auto", dtype=None) -> str:
    """`auto` → `onnx-int8` on CPU when onnxruntime is installed (and no dtype was forced), else `torch`."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    on_cpu = str(device) == "cpu"
    if backend == "onnx-int8":
        if not on_cpu:
            raise ModelUnavailableError(f"backend onnx-int8 runs on the CPU only, not on {device}")
        if not backends.onnx_available():
            raise ModelUnavailableError("backend onnx-int8 needs onnxruntime and onnx: pip install onnxruntime onnx")
        return backend
    if backend == "auto":
        fp32 = dtype is None or str(dtype) == "torch.float32"
        return "onnx-int8" if on_cpu and fp32 and backends.onnx_available() else "torch"
    return backend


def load_model(source: str | os.PathLike = DEFAULT_HUB_ID, device: str = "auto",
               dtype=None, threads: int | None = None,
               backend: str = "auto", cache_dir: Path | None = None) -> SenseVoice:
    """Load SenseVoiceSmall from a local dir, `"fixture"`, or a hub id.

    CUDA runs the torch module in bf16 by default (fp16 is broken upstream, funasr #2395). CPU
    runs the int8 ONNX export when onnxruntime is installed (`backend="auto"`), else torch fp32.
    `cache_dir` (default ~/.cache/sensevoice_core) holds the ONNX export and the model's sha256.
    """
    import time
    t0 = time.perf_counter()
    dev = resolve_device(device)
    which = resolve_backend(dev, backend, dtype)
    cache_dir = Path(cache_dir) if cache_dir else Path.home() / ".cache" / "sensevoice_core"
    model_dir, digest = model_identity(source, cache_dir)
    n_threads = threads or cpu_threads()
    config = _read_config(model_dir)
    tokenizer = Tokenizer(tokenizer_file(model_dir, config))
    parts = dict(frontend=_frontend(model_dir, config), tokenizer=tokenizer,
                 families=tag_families(tokenizer), blank_id=int((config.get("model_conf") or {}).get("blank_id", 0)),
                 textnorm_ids={n: _piece_id(tokenizer, tag(n)) for n in ("withitn", "woitn")},
                 vocab_size=tokenizer.get_vocab_size(), device=dev, source=str(source), model_dir=model_dir,
                 model_sha256=digest)
    if which == "onnx-int8":
        onnx = backends.export_path(model_dir, digest, cache_dir / "onnx")
        kwargs = {} if onnx.is_file() else _export(model_dir, onnx, n_threads)
        runner = backends.OrtRunner(onnx, n_threads)
        return SenseVoice(**parts, dtype="int8", runner=runner, funasr_kwargs=kwargs,
                          load_s=time.perf_counter() - t0)
    from sensevoice_core.torch_backend import TorchRunner, torch_dtype
    dtype = torch_dtype(dtype, dev)
    module, kwargs = _build_checked(model_dir, dev, n_threads)
    module.to(device=dev, dtype=dtype).eval()
    return SenseVoice(**parts, dtype=str(dtype).removeprefix("torch."), runner=TorchRunner(module, dev, dtype),
                      module=module, funasr_kwargs=kwargs, load_s=time.perf_counter() - t0)


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


def model_identity(source: str | os.PathLike, cache_dir: Path | None = None) -> tuple[Path, str]:
    """(model dir, model sha256) for `source` without loading it: the manifest is verified.

    A 940 MB model is read once: its sha256 is remembered for this process and, in `cache_dir`,
    across processes, keyed by every file's size, mtime, ctime and inode — any change to a file
    (which also changes its ctime, which no user can set back) verifies the files again.
    """
    model_dir = resolve_source(source)
    files = _manifest_files(model_dir)
    key = json.dumps([str(model_dir), [_stat(model_dir / f) for f in files]])
    if key not in _verified:
        _verified[key] = _cached_identity(cache_dir, key) or verify_manifest(model_dir)
        _remember_identity(cache_dir, key, _verified[key])
    return model_dir, _verified[key]


_verified: dict[str, str] = {}   # this process: identity key → sha256


def _manifest_files(model_dir: Path) -> list[str]:
    manifest = Path(model_dir) / MANIFEST_NAME
    if not manifest.is_file():
        return ["model.pt"]
    return [MANIFEST_NAME] + [line.split(maxsplit=1)[1].strip() for line in manifest.read_text().splitlines()
                              if line.strip()]


def _stat(path: Path) -> list[int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def _cached_identity(cache_dir: Path | None, key: str) -> str | None:
    try:
        return json.loads((Path(cache_dir) / IDENTITY_CACHE).read_text()).get(key) if cache_dir else None
    except (OSError, ValueError):
        return None


def _remember_identity(cache_dir: Path | None, key: str, sha: str) -> None:
    """Add `key → sha` to the cache file (atomically; a lost race only costs a later re-hash)."""
    if not cache_dir or _cached_identity(cache_dir, key) == sha:
        return
    path = Path(cache_dir) / IDENTITY_CACHE
    try:
        known = json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError):
        known = {}
    known = {k: v for k, v in known.items() if json.loads(k)[0] != json.loads(key)[0]} | {key: sha}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(known))
    os.replace(tmp, path)


def resolve_source(source: str | os.PathLike) -> Path:
    """A model dir for `source`: the fixture, a local dir, or a cached / downloaded hub id."""
    if str(source) == "fixture":
        return FIXTURE_DIR
    path = Path(source).expanduser()
    if path.is_dir():
        missing = [f for f in _REQUIRED_FILES if not (path / f).is_file()]
        if missing:
            raise ModelUnavailableError(f"model dir '{path}' lacks {', '.join(missing)}; "
                                        "point --model at a funasr SenseVoiceSmall dir")
        return path.resolve()
    if path.exists() or str(source).startswith((".", "/", "~")) or str(source).count("/") != 1:
        raise ModelUnavailableError(f"model '{source}' is neither a model dir nor a hub id "
                                    "like iic/SenseVoiceSmall")
    return _hub_dir(str(source))


def _hub_dir(hub_id: str) -> Path:
    cached = _cached_hub_dir(hub_id)
    if cached is not None:
        return cached
    hub, host = next(v for k, v in _HUBS.items() if hub_id.startswith(k))
    reason = _probe(host, HUB_PROBE_TIMEOUT_S)
    if reason:
        raise ModelUnavailableError(
            f"cannot download '{hub_id}': {host} is unreachable ({reason}). On a connected machine "
            f"run `modelscope download --model {hub_id} --local_dir DIR` (or `huggingface-cli "
            f"download FunAudioLLM/SenseVoiceSmall --local-dir DIR`), copy DIR here and pass "
            f"--model DIR (or set LAUGHTRACK_MODEL=DIR); --model fixture runs the bundled tiny test "
            f"model (a demo's numbers, not real ones)")
    from funasr.download.download_model_from_hub import download_model
    kwargs = download_model(model=hub_id, hub=hub, disable_update=True)
    return Path(kwargs["model_path"]).resolve()


def _cached_hub_dir(hub_id: str) -> Path | None:
    """A complete copy of hub_id in the ModelScope or Hugging Face cache, without network."""
    home = Path.home() / ".cache"
    for candidate in (home / "modelscope" / "hub" / "models" / hub_id, home / "modelscope" / "hub" / hub_id):
        if all((candidate / f).is_file() for f in _REQUIRED_FILES):
            return candidate
    snapshots = home / "huggingface" / "hub" / f"models--{hub_id.replace('/', '--')}" / "snapshots"
    for candidate in sorted(snapshots.glob("*")) if snapshots.is_dir() else ():
        if all((candidate / f).is_file() for f in _REQUIRED_FILES):
            return candidate
    return None


def _probe(host: str, timeout: float) -> str | None:
    """None if host:443 accepts a TCP connection within `timeout` s (DNS included), else why not."""
    result: list[str | None] = ["timed out"]

    def attempt() -> None:
        try:
            with socket.create_connection((host, 443), timeout=timeout):
                result[0] = None
        except OSError as exc:
            result[0] = exc.strerror or type(exc).__name__

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(timeout)
    return result[0]


def write_manifest(model_dir: Path) -> Path:
    """Write `manifest.sha256` (sha256sum format) over every file in the dir."""
    lines = [f"{_sha256(p)}  {p.name}" for p in sorted(Path(model_dir).iterdir())
             if p.is_file() and p.name != MANIFEST_NAME]
    out = Path(model_dir) / MANIFEST_NAME
    out.write_text("\n".join(lines) + "\n")
    return out


def verify_manifest(model_dir: Path) -> str:
    """Check every file listed in the manifest; return the manifest's sha256 (the model id)."""
    manifest = Path(model_dir) / MANIFEST_NAME
    if not manifest.is_file():
        return _sha256(Path(model_dir) / "model.pt")
    for line in manifest.read_text().splitlines():
        if not line.strip():
            continue
        want, name = line.split(maxsplit=1)
        path = Path(model_dir) / name.strip()
        if Path(name.strip()).name != name.strip() or not path.is_file():
            raise ModelIntegrityError(f"model dir '{model_dir}': manifest names '{name}', which is missing")
        if _sha256(path) != want:
            raise ModelIntegrityError(f"model dir '{model_dir}': '{name}' does not match its "
                                      "manifest sha256 (tampered or corrupted); refusing to load")
    return _sha256(manifest)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


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


__all__ = ["SenseVoice", "TagFamily", "load_model", "resolve_backend", "BACKENDS", "resolve_source", "write_manifest",
           "verify_manifest", "check_weights", "FIXTURE_DIR", "DEFAULT_HUB_ID",
           "LANGUAGES", "EMOTIONS", "EVENTS"]
