"""The Prefect server laughtrack's commands report to: the configured one (PREFECT_API_URL), else a
local one found running (`laughtrack server start`, `prefect server start`), else a temporary one
for this command only (Prefect's own, ~15 s to start, gone when the command ends).

The local address is Prefect's own setting for `prefect server start`: PREFECT_SERVER_API_HOST and
PREFECT_SERVER_API_PORT (127.0.0.1:4200). The probe is one HTTP GET of /api/health, with no Prefect
import. `laughtrack server start` keeps its pid in $PREFECT_HOME/server.pid, where `prefect server
stop` looks too.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from laughtrack.errors import LaughtrackError

START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 20.0
PID_FILE = "server.pid"              # Prefect's name: `prefect server stop` finds our server too
LOG_FILE = "laughtrack-server.log"


@dataclass(frozen=True)
class Local:
    """Where a local Prefect server listens and keeps its files."""

    host: str
    port: int
    home: Path                        # PREFECT_HOME: its database, our pid and log files

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Local:
        host = env.get("PREFECT_SERVER_API_HOST") or "127.0.0.1"
        home = Path(env.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()
        return cls(host, int(env.get("PREFECT_SERVER_API_PORT") or 4200), home)

    @property
    def api(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}/api"

    @property
    def ui(self) -> str:
        return self.api.removesuffix("/api")

    @property
    def pid_file(self) -> Path:
        return self.home / PID_FILE


def healthy(api: str, timeout: float = 0.5) -> bool:
    """Whether a Prefect server answers `true` at {api}/health."""
    try:
        with urllib.request.urlopen(f"{api.rstrip('/')}/health", timeout=timeout) as reply:
            return reply.status == 200 and json.loads(reply.read() or b"null") is True
    except (OSError, ValueError):
        return False


def choose(env: Mapping[str, str]) -> tuple[str | None, str]:
    """(the API URL this command should use, or None for a temporary server; one line saying which)."""
    if api := env.get("PREFECT_API_URL"):
        return api, f"Prefect server: {api} (PREFECT_API_URL)"
    local = Local.from_env(env)
    if healthy(local.api):
        return local.api, f"Prefect server: {local.ui} (running; the runs show in its UI)"
    return None, (f"no Prefect server at {local.ui}: this command starts a temporary one (a few seconds) and "
                  "stops it when it ends; `laughtrack server start` keeps one running for the next commands")


def start(env: Mapping[str, str]) -> tuple[Local, int | None, float]:
    """Start `prefect server start` in the background (its own session, log in PREFECT_HOME) and
    wait until it answers. (local, pid or None when one was already running, seconds taken)."""
    local = Local.from_env(env)
    t0 = time.monotonic()
    if healthy(local.api):
        return local, None, 0.0
    local.home.mkdir(parents=True, exist_ok=True)
    proc = _spawn(env, local.host, local.port, local.home / LOG_FILE, local.home)
    local.pid_file.write_text(str(proc.pid))
    try:
        _wait_until_up(proc, local.api, local.ui, local.home / LOG_FILE, t0)
    except LaughtrackError:
        local.pid_file.unlink(missing_ok=True)
        raise
    return local, proc.pid, time.monotonic() - t0


@dataclass
class Temporary:
    """A Prefect server for one command: on a free loopback port, in its own session (a Ctrl-C at
    the terminal reaches laughtrack, which stops it, not the server mid-run), and ended by the kernel
    if laughtrack dies without stopping it (PR_SET_PDEATHSIG)."""

    api: str
    pid: int
    log: Path

    def stop(self) -> None:
        """Stop it (its whole process group) and remove its log."""
        _kill(self.pid, term_wait_s=5.0)
        self.log.unlink(missing_ok=True)


def temporary(env: Mapping[str, str]) -> Temporary:
    """Start a Prefect server for this command alone (no UI) and wait until it answers."""
    import tempfile
    t0 = time.monotonic()
    port = _free_port()
    home = Path(env.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()
    home.mkdir(parents=True, exist_ok=True)
    log = Path(tempfile.mkstemp(prefix="laughtrack-prefect-", suffix=".log")[1])
    api = f"http://127.0.0.1:{port}/api"
    proc = _spawn(dict(env, PREFECT_SERVER_UI_ENABLED="false"), "127.0.0.1", port, log, home, die_with_parent=True)
    _wait_until_up(proc, api, api.removesuffix("/api"), log, t0)
    return Temporary(api, proc.pid, log)


def _spawn(env: Mapping[str, str], host: str, port: int, log: Path, cwd: Path,
           die_with_parent: bool = False) -> subprocess.Popen:
    """`prefect server start` in a session of its own, its output appended to `log`."""
    child_env = {k: v for k, v in env.items() if k != "PREFECT_API_URL"}
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", host, "--port",
                                 str(port)], env=child_env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True, cwd=cwd,
                                preexec_fn=_die_with_parent() if die_with_parent else None)


def _die_with_parent():
    """A preexec_fn asking the kernel to SIGTERM the child when laughtrack dies (Linux); None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    parent = os.getpid()

    def arm() -> None:
        libc.prctl(1, int(signal.SIGTERM))      # PR_SET_PDEATHSIG
        if os.getppid() != parent:              # the parent died before the call: follow it now
            os._exit(1)
    return arm


def _wait_until_up(proc: subprocess.Popen, api: str, ui: str, log: Path, t0: float) -> None:
    while not healthy(api, timeout=1.0):
        if proc.poll() is not None or time.monotonic() - t0 > START_TIMEOUT_S:
            _kill(proc.pid)
            raise LaughtrackError(f"the Prefect server did not start at {ui} within {START_TIMEOUT_S:.0f} s "
                                  f"(exit {proc.poll()}); its log: {log}\n{_tail(log)}")
        time.sleep(0.1)


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(env: Mapping[str, str]) -> tuple[Local, int]:
    """Stop the server `start` (or `prefect server start --background`) left running: SIGTERM, then
    SIGKILL, to its process group when it leads one, else to the process. (local, pid)."""
    local = Local.from_env(env)
    pid = _pid(local)
    if pid is None:
        where = "a server answers there but" if healthy(local.api) else "nothing answers there and"
        raise LaughtrackError(f"no laughtrack-started Prefect server at {local.ui}: {where} {local.pid_file} "
                              "names no running Prefect server (stop a server where it was started)")
    if not _kill(pid):
        raise LaughtrackError(f"the Prefect server at {local.ui} (pid {pid}) did not stop; {local.pid_file} is kept")
    local.pid_file.unlink(missing_ok=True)
    return local, pid


def status(env: Mapping[str, str]) -> tuple[Local, bool, int | None]:
    """(local, whether it answers, the pid `start` recorded if that process is alive)."""
    local = Local.from_env(env)
    return local, healthy(local.api), _pid(local)


def _pid(local: Local) -> int | None:
    """The pid in the pid file, if that process is alive and is a Prefect server (a stale file's pid
    may belong to anything by now). Without /proc the pid file is trusted."""
    try:
        pid = int(local.pid_file.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    if not Path("/proc/self").exists():
        return pid
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return None
    return pid if (b"prefect" in command and b"server" in command) or b"uvicorn" in command else None


def _kill(pid: int, term_wait_s: float = STOP_TIMEOUT_S) -> bool:
    """SIGTERM then SIGKILL to the group `pid` leads (or to `pid` alone); True once it is gone."""
    group = _leads_group(pid)
    for sig, wait_s in ((signal.SIGTERM, term_wait_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig) if group else os.kill(pid, sig)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            _reap(pid)
            if not _alive(pid, group):
                return True
            time.sleep(0.1)
    return not _alive(pid, group)


def _leads_group(pid: int) -> bool:
    try:
        return os.getpgid(pid) == pid
    except OSError:
        return False


def _alive(pid: int, group: bool) -> bool:
    try:
        os.killpg(pid, 0) if group else os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
