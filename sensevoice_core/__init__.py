"""sensevoice_core: SenseVoiceSmall through funasr, window by window, with the model's own
probabilities over its event, emotion and language tokens. No Prefect, no DuckDB: arrays in,
typed records out.

    >>> from sensevoice_core import load_model, scan, ScanOptions
    >>> model = load_model("fixture")            # or a local dir, or "iic/SenseVoiceSmall"
    >>> result = scan(model, audio_16k_mono_f32, ScanOptions(window_s=1.0, hop_s=0.5))
    >>> result.prob("event", "Laughter")          # P(laughter) per window

Names are imported on first use (torch and funasr take seconds to import), so that a program
that only needs the errors or the options starts at once. (No submodule is named like a function
it exports: importing `sensevoice_core.scan` would otherwise shadow the function `scan`.)
"""

from importlib import import_module

from sensevoice_core.errors import AudioInputError, ModelIntegrityError, ModelUnavailableError, SenseVoiceError

_WHERE = {
    "DEFAULT_HUB_ID": "model", "FIXTURE_DIR": "model", "SenseVoice": "model", "load_model": "model",
    "model_identity": "model", "ScanOptions": "options", "ScanResult": "scanner", "scan": "scanner",
    "scan_many": "scanner", "RichSegment": "tags", "display_text": "tags", "parse_rich": "tags", "Token": "transcriber",
    "Transcript": "transcriber", "transcribe": "transcriber",
}

__all__ = ["AudioInputError", "ModelIntegrityError", "ModelUnavailableError", "SenseVoiceError", *_WHERE]


def __getattr__(name: str):
    if name in _WHERE:
        value = getattr(import_module(f"sensevoice_core.{_WHERE[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'sensevoice_core' has no attribute {name!r}")
