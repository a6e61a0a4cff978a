"""Errors raised by sensevoice_core. Each message names the value at fault and the fix."""


class SenseVoiceError(Exception):
    """Base class for sensevoice_core failures."""


class ModelUnavailableError(SenseVoiceError):
    """The model source is neither a usable local dir nor a reachable hub id."""


class ModelIntegrityError(SenseVoiceError):
    """A model dir fails its manifest or its weights do not fit the architecture."""


class AudioInputError(SenseVoiceError, ValueError):
    """Audio passed to the core is not mono 16 kHz float samples."""
