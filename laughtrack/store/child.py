"""A user's query in a process of its own, for a long-running server (the web page).

The child opens its own read-only DuckDB instance with the reader's limits, so a query can never
clash with the writers of the server's process ("a different configuration than existing
connections"), and a query that does not stop by itself (its own timer interrupts it at the time
limit) is killed whole, freeing its core and its memory at once. The kernel ends the child if
the server dies (Linux).
"""

from __future__ import annotations

import multiprocessing
import signal
import sys

from laughtrack.errors import LaughtrackError, StoreError
from laughtrack.store import StoreConfig, open_store

GRACE_S = 10.0          # past the time limit, the child is killed (start-up and fetching included)


def query_in_child(config: StoreConfig, sql: str, max_rows: int | None = None) -> tuple[list[str], list[tuple]]:
    """`open_store(config).query(sql, max_rows=…)` in a child process: (column names, rows), or the
    StoreError it raised; a child still running GRACE_S after the time limit is killed."""
    context = multiprocessing.get_context("spawn")      # the caller has threads: never fork
    parent, child = context.Pipe(duplex=False)
    proc = context.Process(target=_run, args=(config, sql, max_rows, child), daemon=True,
                           name="laughtrack-query")
    proc.start()
    child.close()
    try:
        if not parent.poll(config.limits.timeout_s + GRACE_S):
            raise StoreError(f"the query ran past its time limit ({config.limits.timeout_s:g} s) and was stopped")
        kind, *value = parent.recv()
    except EOFError:
        raise StoreError(f"the query process ended without an answer (exit {proc.exitcode}); "
                         f"its memory limit is {config.limits.memory}") from None
    finally:
        parent.close()
        if proc.is_alive():
            proc.kill()
        proc.join(5)
    if kind == "error":
        raise StoreError(value[0])
    return value[0], value[1]


def _run(config: StoreConfig, sql: str, max_rows: int | None, answer) -> None:
    _die_with_parent()
    try:
        names, rows = open_store(config).query(sql, max_rows=max_rows)
        answer.send(("rows", names, rows))
    except LaughtrackError as exc:
        answer.send(("error", str(exc)))
    except Exception as exc:  # noqa: BLE001 — the parent shows it as one line
        answer.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        answer.close()


def _die_with_parent() -> None:
    """Ask the kernel to end this process when its parent dies (Linux; elsewhere nothing)."""
    if sys.platform.startswith("linux"):
        import ctypes
        ctypes.CDLL(None).prctl(1, int(signal.SIGKILL))     # PR_SET_PDEATHSIG
