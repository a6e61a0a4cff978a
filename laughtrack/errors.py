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


def captured(step, *args):
    """`step(*args)`, or the exception it raised: one item's failure becomes that item's result (and
    its failures row) instead of stopping the others of its group."""
    try:
        return step(*args)
    except Exception as exc:  # noqa: BLE001 — recorded with its type by the caller
        return exc
