"""Analysis parameters: besides the audio, the model, the backend and the code, what decides an
analysis' numbers (laughtrack/identity.py turns them into its identity). Pure, no I/O."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from laughtrack.events import EventOptions


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
