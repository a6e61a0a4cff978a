"""sensevoice_core: SenseVoiceSmall through funasr, window by window, with the model's own
probabilities over its event, emotion and language tokens. No Prefect, no DuckDB: arrays in,
typed records out.

    >>> from sensevoice_core import load_model, scan, ScanOptions
    >>> model = load_model("fixture")            # or a local dir, or "iic/SenseVoiceSmall"
    >>> result = scan(model, audio_16k_mono_f32, ScanOptions(window_s=1.0, hop_s=0.5))
    >>> result.prob("event", "Laughter")          # P(laughter) per window
"""

from sensevoice_core.errors import AudioInputError, ModelIntegrityError, ModelUnavailableError, SenseVoiceError
from sensevoice_core.model import DEFAULT_HUB_ID, FIXTURE_DIR, SenseVoice, load_model, model_identity
from sensevoice_core.scan import ScanOptions, ScanResult, scan, scan_many
from sensevoice_core.tags import RichSegment, display_text, parse_rich
from sensevoice_core.transcribe import Token, Transcript, transcribe

__all__ = [
    "AudioInputError", "ModelIntegrityError", "ModelUnavailableError", "SenseVoiceError",
    "DEFAULT_HUB_ID", "FIXTURE_DIR", "SenseVoice", "load_model", "model_identity",
    "ScanOptions", "ScanResult", "scan", "scan_many", "RichSegment", "display_text", "parse_rich",
    "Token", "Transcript", "transcribe",
]
