"""Where tasks report "file X reached stage Y": the caller of a flow follows its own run.

A context variable rather than a flow parameter: progress is presentation, not part of an
analysis, and it must not end up in Prefect cache keys. Prefect's thread-pool task runner copies
the caller's context into every task it runs, so each caller (a CLI progress bar, one page of the
web page among several at once) hears the stages of its own run only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from laughtrack.records import Stage

Sink = Callable[[str, Stage], None]   # (path, stage)
_sink: ContextVar[Sink | None] = ContextVar("laughtrack_progress", default=None)


@contextmanager
def following(sink: Sink) -> Iterator[None]:
    """Send the stages reported in this context (and the tasks it starts) to `sink`."""
    token = _sink.set(sink)
    try:
        yield
    finally:
        _sink.reset(token)


def report(path: str, stage: Stage) -> None:
    """Tell this context's sink, if any, that `path` reached `stage`."""
    sink = _sink.get()
    if sink is not None:
        sink(path, stage)
