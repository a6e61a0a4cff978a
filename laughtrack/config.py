"""One run configuration, read once at the edge, and the engine it resolves to.

- `RunConfig`: what the user chose — CLI flags, deployment parameters, else `$LAUGHTRACK_*`, else
  the defaults. `RunConfig.from_env(os.environ, ...)` is called by the CLI and by the flows'
  entry points (a deployment's edge) and nowhere else; everything below receives it as an argument.
  Pure: the named event rules it names are read from the results store by the flow's entry step
  (`resolved`), not here.
- `Engine`: how this process runs the model, resolved once from a RunConfig (sensevoice_core's
  ModelSpec: the device, the backend, the precision, the model's sha256; the batch sizes).
The identity of an analysis is laughtrack/identity.py's.
"""

from __future__ import annotations

import functools
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from laughtrack.events import EventOptions
from laughtrack.identity import CODE_VERSION, ConfigKey
from laughtrack.params import AnalysisParams
from laughtrack.store import QueryLimits, StoreConfig, open_store
from sensevoice_core.device import BACKENDS

if TYPE_CHECKING:       # resolving a model imports sensevoice_core: only when an engine is built
    from sensevoice_core.model import ModelSpec

ENV = {"db": "LAUGHTRACK_DB", "model": "LAUGHTRACK_MODEL", "cache_dir": "LAUGHTRACK_CACHE",
       "inbox": "LAUGHTRACK_INBOX", "device": "LAUGHTRACK_DEVICE", "report_dir": "LAUGHTRACK_REPORTS",
       "backend": "LAUGHTRACK_BACKEND", "lake_data": "LAUGHTRACK_LAKE_DATA", "host": "LAUGHTRACK_HOST",
       "events": "LAUGHTRACK_EVENTS", "precision": "LAUGHTRACK_PRECISION", "torch_compile": "LAUGHTRACK_COMPILE",
       "query_timeout_s": "LAUGHTRACK_QUERY_TIMEOUT_S",
       "query_memory": "LAUGHTRACK_QUERY_MEMORY", "query_threads": "LAUGHTRACK_QUERY_THREADS"}
NUMBERS = {"query_timeout_s": float, "query_threads": int, "torch_compile": "bool"}   # not strings
DEFAULT_DB = "laughtrack.duckdb"
DEFAULT_MODEL = "iic/SenseVoiceSmall"
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = {"auto": None, "fp32": "float32", "bf16": "bfloat16"}   # torch backend: bf16 is autocast
# Windows per model batch. On onnx-int8 the batch changes the numbers (activation scales are per
# batch), so it is part of the identity; torch is batch-invariant. bench/RESULTS.md: flat 16-256.
SCAN_BATCH = {"cpu": 64, "cuda": 1024}
TRANSCRIBE_BATCH = {"cpu": 8, "cuda": 32}   # ≤ 15 s chunks per batch


@dataclass(frozen=True)
class RunConfig:
    """Everything a run needs to know, built once at the edge."""

    db: str = DEFAULT_DB        # a DuckDB file, or ducklake:postgres:<conninfo>
    lake_data: str = ""         # DuckLake only: the Parquet folder every machine mounts
    model: str = DEFAULT_MODEL
    device: str = "auto"        # auto | cpu | cuda[:N]
    backend: str = "auto"       # auto | torch | onnx-int8
    precision: str = "auto"     # auto (bf16 on CUDA, fp32 on a CPU) | fp32 | bf16 (the torch backend)
    torch_compile: bool = False  # torch backend: torch.compile the encoder head (not measured to pay: off)
    cache_dir: str = field(default_factory=lambda: str(Path.home() / ".cache" / "laughtrack"))
    report_dir: str = ""        # "" → <db stem>-reports beside the database
    inbox: str = "inbox"
    host: str = ""              # this machine's name for its devices' locks; "" → the hostname
    stream: str = "all"         # which audio streams: all | N (not part of an analysis' identity)
    events: str = "default"     # the event parameter set: default, or a name `laughtrack tune` saved
    query_timeout_s: float = QueryLimits.timeout_s     # what one read-only query may take (QueryLimits)
    query_memory: str = QueryLimits.memory
    query_threads: int = QueryLimits.threads
    params: AnalysisParams = field(default_factory=AnalysisParams)

    @classmethod
    def from_env(cls, env: Mapping[str, str], **given) -> RunConfig:
        """Each field: the given value when not None/empty, else $LAUGHTRACK_*, else the default."""
        values = {}
        for name, var in ENV.items():
            value = given.pop(name, None)
            value = str(value) if value not in (None, "") else env.get(var)
            if value:
                values[name] = _number(name, var, value) if name in NUMBERS else value
        extra = {k: v for k in ("params", "stream") if (v := given.pop(k, None)) is not None}
        if given:
            raise TypeError(f"unknown settings: {', '.join(given)}")
        return cls(**values, **extra).validate()

    def with_events(self, saved: EventOptions | None) -> RunConfig:
        """This configuration with its named event rules (`saved`: what the results store holds
        under `events`, read by the flow's entry step): the rules travel in `params`, so workers and
        lineage see the rules, not only the name. ValueError if a named set is not there."""
        if self.events == "default":
            return self if self.params.events.name == "default" else \
                replace(self, params=replace(self.params, events=EventOptions()))
        if saved is None:
            raise ValueError(f"no event parameter set {self.events!r} in {self.store}: save one with "
                             f"`laughtrack tune LABELS --save {self.events}` (an older database: "
                             "`laughtrack db migrate` first)")
        return replace(self, params=replace(self.params, events=saved))

    def resolved(self, store) -> RunConfig:
        """`with_events` of what `store` holds under `events` (read only for a named set)."""
        if self.events == self.params.events.name:
            return self
        return self.with_events(store.event_set(self.events) if self.events != "default" else None)

    def validate(self) -> RunConfig:
        """Refuse values no run could use, with the fix, before any work starts."""
        device = self.device.split(":")[0]
        if device not in DEVICES or (":" in self.device and not self.device.split(":", 1)[1].isdigit()):
            raise ValueError(f"device {self.device!r}: use auto, cpu or cuda (cuda:N for one GPU)")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend {self.backend!r}: use one of {', '.join(BACKENDS)}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision {self.precision!r}: use one of {', '.join(PRECISIONS)}")
        if self.precision != "auto" and self.backend == "onnx-int8":
            raise ValueError(f"precision {self.precision}: the onnx-int8 backend computes with int8 weights; "
                             "use backend torch (or auto) for fp32 or bf16")
        if self.stream != "all" and not self.stream.isdigit():
            raise ValueError(f"stream {self.stream!r}: use 'all' or a stream number (0 is the first audio stream)")
        self.store.validate()
        self.params.validate()
        return self

    @property
    def store(self) -> StoreConfig:
        """Where the results live (laughtrack/store), and what a query there may take."""
        return StoreConfig(self.db, self.lake_data, self.cache_dir,
                           QueryLimits(self.query_timeout_s, self.query_memory, self.query_threads))

    @property
    def reports(self) -> str:
        """Where reports go: report_dir, else `<db stem>-reports/` beside a DuckDB file, or
        `reports/` in a DuckLake's data folder (which every machine mounts)."""
        if self.report_dir:
            return self.report_dir
        if self.store.is_lake:
            return str(Path(self.lake_data) / "reports")
        db = Path(self.db)
        return str(db.with_name(f"{db.stem}-reports"))

    def absolute(self) -> RunConfig:
        """The same configuration with its paths absolute (for runs in other processes)."""
        def ab(p: str) -> str:
            return str(Path(p).expanduser().absolute()) if p else p
        model = ab(self.model) if Path(self.model).expanduser().exists() else self.model
        db = self.db if self.store.is_lake else ab(self.db)
        return replace(self, db=db, lake_data=ab(self.lake_data), cache_dir=ab(self.cache_dir),
                       report_dir=ab(self.reports), inbox=ab(self.inbox), model=model)

    def engine(self) -> Engine:
        """The device, backend and model identity of this configuration (resolved once per process)."""
        return _engine(self.model, self.device, self.backend, self.precision, self.torch_compile, self.cache_dir,
                       self.host or socket.gethostname())


@dataclass(frozen=True)
class Engine:
    """How this process runs the model: the resolved model spec (device, backend, precision,
    identity: decided once, by sensevoice_core.resolve), the batch sizes and the machine."""

    spec: ModelSpec
    scan_batch: int
    transcribe_batch: int
    cache_dir: str          # PCM, ONNX exports, model sha cache, device lock
    host: str = ""          # the machine owning the device (its lock and its Prefect slot)

    @property
    def model(self) -> str:
        return self.spec.source

    @property
    def model_dir(self) -> str:
        return str(self.spec.model_dir)

    @property
    def model_sha256(self) -> str:
        return self.spec.sha256

    @property
    def device(self) -> str:
        return self.spec.device

    @property
    def backend(self) -> str:
        return self.spec.backend

    @property
    def dtype(self) -> str:
        """How the activations are computed: fp32 (the int8 export's too) or bf16."""
        return "bf16" if self.spec.dtype == "bfloat16" else "fp32"

    @property
    def device_slot(self) -> str:
        """The Prefect concurrency limit around this machine's device: one per host and device,
        never one for the whole cluster."""
        return f"laughtrack-device:{self.host}:{self.device}"

    @property
    def label(self) -> str:
        """How the numbers were computed, e.g. `cpu onnx-int8 batch 64` (the `device` column)."""
        batch = f" batch {self.scan_batch}" if self.backend == "onnx-int8" else ""
        return f"{self.device} {self.backend} {self.dtype}{batch}" + (" compiled" if self.spec.compile else "")

    def config_key(self, params: AnalysisParams, code_version: str = CODE_VERSION) -> ConfigKey:
        numbers = f"{self.backend} {self.dtype}" + (f" batch {self.scan_batch}" if self.backend == "onnx-int8" else "") \
            + (" compiled" if self.spec.compile else "")
        return ConfigKey(self.model_sha256, params.to_json(), code_version, numbers)


@functools.lru_cache(maxsize=8)
def _engine(model: str, device: str, backend: str, precision: str, compile: bool, cache_dir: str, host: str) -> Engine:
    from sensevoice_core.model import resolve
    spec = resolve(model, device=device, backend=backend, dtype=PRECISIONS[precision], cache_dir=Path(cache_dir),
                   compile=compile)
    kind = spec.device.split(":")[0]
    return Engine(spec=spec, scan_batch=SCAN_BATCH[kind], transcribe_batch=TRANSCRIBE_BATCH[kind],
                  cache_dir=cache_dir, host=host)


def _number(name: str, var: str, value: str) -> float | int | bool:
    if NUMBERS[name] == "bool":
        if value.lower() not in ("1", "true", "on", "yes", "0", "false", "off", "no"):
            raise ValueError(f"{name.replace('_', '-')} {value!r} (or ${var}): use on or off")
        return value.lower() in ("1", "true", "on", "yes")
    try:
        return NUMBERS[name](value)
    except ValueError:
        raise ValueError(f"{name.replace('_', '-')} {value!r} (or ${var}): not a number") from None
