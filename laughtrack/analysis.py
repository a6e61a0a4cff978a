"""Analysis parameters and the code version: besides the audio, the model and the backend, what
decides an analysis' numbers (laughtrack/config.py turns them into its identity). Pure, no I/O
beyond reading this package's own sources once."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import laughtrack
import sensevoice_core
from laughtrack.events import EventOptions
from laughtrack.media import PCM_RECIPE


@dataclass(frozen=True)
class AnalysisParams:
    """Everything besides the audio and the model that changes an analysis' numbers."""

    window_s: float = 0.6    # ≥ 0.6 s, the shortest clip the real model was trained on (bench/RESULTS.md)
    hop_s: float = 0.3
    adaptive: bool = True    # odd windows only at transitions: same accuracy, ~half the model work (bench/RESULTS.md)
    language: str = "auto"
    use_itn: bool = True
    transcribe: bool = True
    events: EventOptions = field(default_factory=EventOptions)

    def validate(self) -> AnalysisParams:
        self.scan_options().validate()
        self.events.validate()
        return self

    def scan_options(self, batch_size: int = 64):
        """The sensevoice_core.ScanOptions of these parameters."""
        from sensevoice_core.options import ScanOptions
        return ScanOptions(window_s=self.window_s, hop_s=self.hop_s, batch_size=batch_size,
                           language=self.language, use_itn=False, adaptive=self.adaptive)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def _code_version() -> str:
    """Package version plus a hash of the code that computes the numbers (changes re-analyse)."""
    h = hashlib.sha256()
    here = Path(__file__).parent
    sources = sorted(Path(sensevoice_core.__file__).parent.glob("*.py"))
    sources += [here / "analysis.py", here / "events.py", here / "density.py", here / "store" / "rows.py"]
    for p in sources:
        h.update(p.read_bytes())
    h.update(PCM_RECIPE.encode())       # how the audio is decoded (laughtrack/media.py)
    return f"{laughtrack.__version__}+{h.hexdigest()[:10]}"


CODE_VERSION = _code_version()
