"""How a laughtrack command ends: on time, when interrupted, and without leaving anything running.

Ctrl-C (SIGINT) or SIGTERM stops a command within seconds: the work runs in a worker thread (so
Prefect's engine, which only takes signals in the main thread, installs no handler of its own and
never waits for a running model step to finish), the main thread waits on it and takes the signal;
the command then says what was stored, stops the temporary Prefect server it started, and exits
130 or 143. What is stored is whole (each analysis is one transaction); what was in flight is
simply not there, and the next run does it.
"""

from __future__ import annotations

import atexit
import contextvars
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

WAIT_STEP_S = 0.2            # how often the main thread looks up from waiting (signals land between looks)
_cleanups: list[Callable[[], None]] = []
_stopping = threading.Event()


class Interrupted(BaseException):
    """SIGINT or SIGTERM reached the main thread (a BaseException, like KeyboardInterrupt: no
    `except Exception` swallows it on the way out)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        """The shell's convention: 128 + the signal (130 for SIGINT, 143 for SIGTERM)."""
        return 128 + self.signum


def _on_signal(signum: int, frame) -> None:
    if _stopping.is_set():        # a second Ctrl-C while stopping: go now
        os._exit(128 + signum)
    _stopping.set()
    _received.append(signum)
    raise Interrupted(signum)


_received: list[int] = []


def received() -> Interrupted:
    """The interrupt that arrived, for a library that turned it into its own KeyboardInterrupt
    (watchfiles does); SIGINT if none was seen."""
    return Interrupted(_received[0] if _received else signal.SIGINT)


def catch_signals() -> None:
    """SIGINT and SIGTERM raise Interrupted in the main thread from now on."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _on_signal)


def on_exit(cleanup: Callable[[], None]) -> None:
    """Run `cleanup` when the command ends, however it ends (a normal exit, an error, a signal)."""
    _cleanups.append(cleanup)
    atexit.register(_run_once, cleanup)


def _run_once(cleanup: Callable[[], None]) -> None:
    if cleanup in _cleanups:
        _cleanups.remove(cleanup)
        try:
            cleanup()
        except Exception:  # noqa: BLE001 — best effort on the way out; the exit code says what happened
            pass


def in_thread(work: Callable[..., T], *args, **kwargs) -> T:
    """`work(*args, **kwargs)` in a daemon thread while the main thread waits; its value or its
    exception. A signal interrupts the wait at once (Interrupted), whatever the thread is doing."""
    value: list = []
    error: list[BaseException] = []
    context = contextvars.copy_context()        # what the caller's context holds (a progress sink …)

    def run() -> None:
        try:
            value.append(context.run(work, *args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 — handed to the main thread
            error.append(exc)

    thread = threading.Thread(target=run, name="laughtrack-work", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(WAIT_STEP_S)
    if error:
        raise error[0]
    return value[0]


def stop_children(wait_s: float = 5.0) -> None:
    """SIGTERM this process's child processes (e.g. the flow runs `serve` started), SIGKILL those
    still there after `wait_s` (Linux: children found in /proc)."""
    children = _children()
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in children:
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        deadline = time.monotonic() + wait_s
        while children and time.monotonic() < deadline:
            children = [pid for pid in children if _running(pid)]
            time.sleep(0.1)
        if not children:
            return


def _children() -> list[int]:
    me, found = str(os.getpid()), []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[1] == me:
            found.append(int(stat.parent.name))
    return found


def _running(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def captured_quietly(work: Callable[[], None]) -> None:
    """`work()`, its exception ignored (best-effort steps on the way out)."""
    try:
        work()
    except Exception:  # noqa: BLE001 — best effort
        pass


_quick = threading.Event()


def nothing_to_tear_down() -> None:
    """This command only read (`query`): once it has answered, the process may end without the
    interpreter's teardown, in which DuckDB can abort a process that read through a worker
    thread (`terminate called without an active exception`, duckdb/duckdb#13904)."""
    _quick.set()


def finished(code: int) -> None:
    """The command returned with `code`: end at once if it only read, else return (the normal exit)."""
    if _quick.is_set():
        exit_now(code)


def exit_now(code: int, line: str | None = None) -> None:
    """Say `line` (stderr), run the cleanups (stop the temporary server …), exit with `code` at once:
    the daemon threads still running (a model step, a query) end with the process."""
    if line:
        print(line, file=sys.stderr, flush=True)
    for cleanup in list(_cleanups):
        _run_once(cleanup)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
