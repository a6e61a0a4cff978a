"""Seconds spent per stage (features, model) and model work done (passes, frames) in this process,
for benchmarks' breakdowns."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import defaultdict


class StageClock:
    """Thread-safe running totals: `with CLOCK("model"): ...` adds the block's wall time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seconds: dict[str, float] = defaultdict(float)
        self._counts: dict[str, float] = defaultdict(float)

    @contextlib.contextmanager
    def __call__(self, stage: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            with self._lock:
                self._seconds[stage] += time.perf_counter() - t0

    def count(self, name: str, value: float) -> None:
        """Add `value` to a running count (not seconds): `model passes`, `model frames`."""
        with self._lock:
            self._counts[name] += value

    def snapshot(self) -> dict[str, float]:
        with self._lock:
            return dict(self._seconds)

    def counts(self) -> dict[str, float]:
        with self._lock:
            return dict(self._counts)

    def reset(self) -> None:
        with self._lock:
            self._seconds.clear()
            self._counts.clear()


CLOCK = StageClock()
