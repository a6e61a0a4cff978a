"""Seconds spent per stage (features, model) in this process, for benchmarks' breakdowns."""

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

    @contextlib.contextmanager
    def __call__(self, stage: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            with self._lock:
                self._seconds[stage] += time.perf_counter() - t0

    def snapshot(self) -> dict[str, float]:
        with self._lock:
            return dict(self._seconds)

    def reset(self) -> None:
        with self._lock:
            self._seconds.clear()


CLOCK = StageClock()
