"""Where tasks report "file X reached stage Y"; the CLI plugs a rich progress bar in here.

A process-wide sink rather than a flow parameter: progress is presentation, not part of an
analysis, and it must not end up in Prefect cache keys.
"""

from __future__ import annotations

from collections.abc import Callable

from laughtrack.records import Stage

Sink = Callable[[str, Stage], None]   # (path, stage)
_sink: Sink | None = None


def set_sink(sink: Sink | None) -> None:
    """Install (or remove, with None) the function that receives progress updates."""
    global _sink
    _sink = sink


def report(path: str, stage: Stage) -> None:
    """Tell the sink, if any, that `path` reached `stage`."""
    if _sink is not None:
        _sink(path, stage)
