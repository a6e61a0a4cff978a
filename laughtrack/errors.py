"""The laughtrack exception family. Messages say what failed, the value, and what to do."""


class LaughtrackError(Exception):
    """Base class: a user-facing failure with a one-line message."""


class TimelineError(LaughtrackError, ValueError):
    """A synth timeline is malformed."""


class MediaError(LaughtrackError):
    """ffmpeg could not read or write a media file."""


class NoAudioError(MediaError):
    """A media file has no audio stream."""


class StillWritingError(MediaError):
    """A file changed while it was being read: an upload or recording still in progress."""


class StoreError(LaughtrackError):
    """The results database cannot be opened, read or written."""
