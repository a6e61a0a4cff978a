"""One retry helper for every store operation that can meet another process: backoff with jitter."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

WAIT_S = 120.0      # how long to wait for another process before giving up


def retry(attempt: Callable[[], T], transient: Callable[[BaseException], bool], wait_s: float = WAIT_S,
          first_delay_s: float = 0.05, max_delay_s: float = 2.0) -> T:
    """Call `attempt` until it returns; retry the exceptions `transient` accepts for up to `wait_s`."""
    deadline, delay = time.monotonic() + wait_s, first_delay_s
    while True:
        try:
            return attempt()
        except Exception as exc:  # noqa: BLE001 — re-raised unless transient and in time
            if not transient(exc) or time.monotonic() > deadline:
                raise
        time.sleep(delay * random.uniform(0.5, 1.5))
        delay = min(delay * 2, max_delay_s)
