"""The one identity of an analysis: the content, the stream, and everything else that decides its
numbers — the model's sha256, the parameters, the code version, the backend and its precision. The
flow, the inbox scan, the watcher and the store all ask "is this done?" with these, so they cannot
disagree. Pure, no I/O beyond reading this package's own sources once (the code version)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import laughtrack
import sensevoice_core
from laughtrack.media import PCM_RECIPE


def _code_version() -> str:
    """Package version plus a hash of the code that computes the numbers (changes re-analyse)."""
    h = hashlib.sha256()
    here = Path(__file__).parent
    sources = sorted(Path(sensevoice_core.__file__).parent.glob("*.py"))
    sources += [here / "params.py", here / "identity.py", here / "events.py", here / "density.py", here / "store" / "rows.py"]
    for p in sources:
        h.update(p.read_bytes())
    h.update(PCM_RECIPE.encode())       # how the audio is decoded (laughtrack/media.py)
    return f"{laughtrack.__version__}+{h.hexdigest()[:10]}"


CODE_VERSION = _code_version()


@dataclass(frozen=True, slots=True)
class ConfigKey:
    """Everything besides the content that decides an analysis' numbers."""

    model_sha256: str
    params_json: str
    code_version: str
    numbers: str            # backend, precision and (on int8) batch: `onnx-int8 fp32 batch 64`

    @property
    def id(self) -> str:
        """16 hex digits: the `analyses.config_key` column and the inbox's run keys."""
        return _digest([self.model_sha256, self.params_json, self.code_version, self.numbers])[:16]

    def analysis(self, sha256: str, stream_index: int) -> AnalysisKey:
        return AnalysisKey(sha256, stream_index, self)


@dataclass(frozen=True, slots=True)
class AnalysisKey:
    """One analysis: the same bytes and stream under the same ConfigKey is the same analysis."""

    sha256: str
    stream_index: int
    config: ConfigKey

    @property
    def analysis_id(self) -> str:
        return _digest([self.sha256, self.stream_index, self.config.id])[:20]


def _digest(parts: list) -> str:
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def video_id(sha256: str) -> str:
    """Videos are identified by content, so a renamed copy is the same video."""
    return sha256[:16]
