"""Where and how the model runs: the device, the backend and the precision, decided once.

- device: `auto` → CUDA when present (probed without importing torch when there is no NVIDIA
  device node), else CPU; an explicit `cuda` that torch cannot see is an error.
- backend: `auto` → the int8 ONNX export on a CPU with onnxruntime (no dtype forced), else torch.
- precision: bf16 on CUDA — as autocast over the fp32 weights: funasr's own fp16 and `bf16=True`
  paths are broken upstream (funasr #2395; a bf16 module meets the fp32 masks of its SAN-M FSMN
  block: "expected scalar type Float but found BFloat16") — fp32 on a CPU (bf16 when asked), and
  int8 weights for the ONNX export.
"""

from __future__ import annotations

import os
import sys

from sensevoice_core import backends
from sensevoice_core.errors import ModelUnavailableError

BACKENDS = ("auto", "torch", "onnx-int8")
DTYPES = ("float32", "bfloat16")
_NVIDIA = ("/dev/nvidia0", "/dev/nvidiactl", "/proc/driver/nvidia/version", "/dev/dxg")   # dxg: WSL2


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


def resolve_backend(device: str, backend: str = "auto", dtype: str | None = None) -> str:
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
        fp32 = dtype_name(dtype) in (None, "float32")
        return "onnx-int8" if on_cpu and fp32 and backends.onnx_available() else "torch"
    return backend


def resolve_dtype(device: str, backend: str, dtype=None) -> str:
    """The precision the model computes in: `int8` for the ONNX export, else the dtype asked for,
    else bf16 on CUDA and fp32 on a CPU."""
    if backend == "onnx-int8":
        return "int8"
    name = dtype_name(dtype)
    if name is None:
        return "bfloat16" if str(device).startswith("cuda") else "float32"
    if name not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {name!r} (fp16 is broken upstream, "
                         "funasr #2395)")
    return name


def dtype_name(dtype) -> str | None:
    """`torch.bfloat16`, `"bf16"`, `"bfloat16"` → `"bfloat16"` (None stays None); no torch import."""
    if dtype is None:
        return None
    name = str(dtype).removeprefix("torch.")
    return {"bf16": "bfloat16", "fp32": "float32", "float": "float32"}.get(name, name)


def cpu_threads() -> int:
    """Cores this process may use (funasr would otherwise take 4 threads on any machine)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)
