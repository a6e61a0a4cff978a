"""A throwaway PostgreSQL server for tests and benchmarks: Debian's binaries, a temp dir, a free
loopback port, gone when the block ends.

    with temporary_postgres() as conninfo:   # "dbname=laughtrack host=127.0.0.1 port=… user=postgres"
        ...

`initdb` refuses root, so as root the server runs as the `postgres` user (`runuser`), in a
directory that user can reach. Trust authentication on loopback only.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DATABASE = "laughtrack"


def server_bin() -> Path:
    """Debian's PostgreSQL server binaries (the newest installed major version)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise RuntimeError("PostgreSQL's server is not installed: apt-get install postgresql "
                           "(`make test` does this)")
    return Path(found[-1]).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def create_database(conninfo: str, name: str) -> str:
    """A new database on the server of `conninfo`; returns the conninfo naming it."""
    port = conninfo.split("port=")[1].split()[0]
    subprocess.run([str(server_bin() / "createdb"), "-h", "127.0.0.1", "-p", port, "-U", "postgres", name],
                   check=True, capture_output=True, timeout=60)
    return conninfo.replace(f"dbname={DATABASE}", f"dbname={name}")


@contextmanager
def temporary_postgres(max_connections: int = 300) -> Iterator[str]:
    """Start a private server; yield the libpq conninfo of its `laughtrack` database."""
    bindir, port = server_bin(), free_port()
    root = Path(tempfile.mkdtemp(prefix="laughtrack-pg-"))
    root.chmod(0o755)           # the postgres user must reach its data dir
    data = root / "data"
    as_root = os.geteuid() == 0

    def run(*cmd: str, **kw) -> subprocess.CompletedProcess:
        argv = ["runuser", "-u", "postgres", "--", *cmd] if as_root else list(cmd)
        return subprocess.run(argv, check=True, capture_output=True, text=True, timeout=120, **kw)

    data.mkdir()
    if as_root:
        shutil.chown(data, "postgres", "postgres")
    try:
        run(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
        options = (f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off "
                   f"-c max_connections={max_connections}")
        run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(data / "log"), "-o", options, "-w", "start")
        run(str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", DATABASE)
        yield f"dbname={DATABASE} host=127.0.0.1 port={port} user=postgres"
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run((["runuser", "-u", "postgres", "--"] if as_root else []) +
                           [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                           capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)
