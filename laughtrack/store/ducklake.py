"""The scale-out backend: a DuckLake — its catalog in PostgreSQL, its rows in Parquet files under a
data folder that every machine mounts. Any number of processes on any number of machines write
and read it at once; sql.py's write lock makes each analysis land exactly once.

- The DuckDB extensions come from pinned packages (duckdb-extension-ducklake/-postgres), installed
  into the laughtrack cache from the wheel's file: nothing downloads at run time.
- Writers never create or migrate the catalog: `laughtrack db migrate` does, once.
- Readers attach read-only, may touch files under the data folder only, and run only plain
  queries: no ducklake_*/postgres_* functions, no COPY, nothing but SELECT.
"""

from __future__ import annotations

import atexit
import fcntl
import importlib
import json
import os
import re
import threading
from pathlib import Path

import duckdb

from laughtrack.errors import StoreError, StoreFault
from laughtrack.store.retry import fault, retry
from laughtrack.store.sql import SqlStore

EXTENSIONS = {"ducklake": "duckdb_extension_ducklake", "postgres": "duckdb_extension_postgres"}
ALIAS = "lake"
# DuckLake retries a commit that met another one's snapshot by itself; its defaults (10 tries,
# 100 ms growing 1.5x) give up or idle under many writers. Commits take ~0.2 s: retry soon, often.
COMMIT_RETRY = {"ducklake_max_retry_count": 100, "ducklake_retry_wait_ms": 10, "ducklake_retry_backoff": 1.2}
FORBIDDEN_FUNCTIONS = re.compile(r"^(ducklake_|postgres_|read_|glob$|parquet_)", re.I)   # reach the catalog or files


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def redact(text: str) -> str:
    """`password=…` in a conninfo (which DuckDB repeats in its errors) as `password=***`."""
    return re.sub(r"(password\s*=\s*)('[^']*'|[^\s\"']+)", r"\1***", text, flags=re.I)


def extension_file(name: str) -> Path:
    """The signed extension binary that the pinned package ships for this duckdb."""
    package = EXTENSIONS[name]
    try:
        module = importlib.import_module(package)
    except ImportError:
        raise StoreError(f"the DuckLake backend needs the {name} extension: pip install "
                         f"{package.replace('_', '-')}=={duckdb.__version__}") from None
    path = Path(module.__file__).parent / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
    if not path.is_file():
        raise StoreError(f"{package.replace('_', '-')} has no {name} extension for duckdb {duckdb.__version__} "
                         "(the extension packages load into one duckdb version only; see pyproject.toml)")
    return path


# One attached DuckDB instance per process, role and lake, reused: attaching costs ~0.35 s (the
# extensions, PostgreSQL, the catalog), far more than a commit, and a commit that lost a race is
# retried on a warm connection. Each use gets its own cursor (a connection of that instance).
_instances: dict[tuple, duckdb.DuckDBPyConnection] = {}
_instances_lock = threading.Lock()


@atexit.register
def _close_instances() -> None:
    """Close the attached instances while the interpreter is whole: one left to the interpreter's
    teardown can take DuckDB's threads down with `terminate called without an active exception`."""
    with _instances_lock:
        for con in _instances.values():
            try:
                con.close()
            except duckdb.Error:
                pass
        _instances.clear()


class DuckLake(SqlStore):
    """A DuckLake with a PostgreSQL catalog (`ducklake:postgres:<libpq conninfo>`)."""

    auto_migrate = False
    constraints = False

    def __init__(self, config):
        self.config = config
        self.url = config.url
        self.limits = config.limits
        self.data = str(Path(config.lake_data).expanduser().absolute())
        self.extension_dir = Path(config.cache_dir or Path.home() / ".cache" / "laughtrack") / "duckdb-extensions"

    def exists(self) -> bool:
        """Whether the catalog has been created (`laughtrack db migrate`)."""
        try:
            self._cursor(read_only=True).close()
        except StoreError as exc:
            if "laughtrack db migrate" in str(exc):
                return False
            raise
        return True

    def _connect(self, read_only: bool, create: bool = False) -> duckdb.DuckDBPyConnection:
        con = duckdb.connect(config={"extension_directory": str(self.extension_dir),
                                     "autoinstall_known_extensions": False, "autoload_known_extensions": False})
        try:
            self._load_extensions(con)
            for name, value in COMMIT_RETRY.items():
                con.execute(f"SET {name} = {value}")
            options = [f"DATA_PATH {_quote(self.data + '/')}"] if create else []
            options += ["READ_ONLY"] if read_only else []
            options += [] if create else ["CREATE_IF_NOT_EXISTS false"]
            retry(lambda: con.execute(f"ATTACH {_quote(self.url)} AS {ALIAS} ({', '.join(options)})"), wait_s=60)
            con.execute(f"USE {ALIAS}")
        except duckdb.Error as exc:
            con.close()
            raise self._attach_error(exc) from None
        return con

    def _load_extensions(self, con: duckdb.DuckDBPyConnection) -> None:
        installed = {r[0] for r in con.execute("SELECT extension_name FROM duckdb_extensions() WHERE installed").fetchall()}
        missing = [name for name in EXTENSIONS if name not in installed and f"{name}_scanner" not in installed]
        if missing:
            self.extension_dir.mkdir(parents=True, exist_ok=True)
            with open(self.extension_dir / ".install.lock", "w") as lock:   # one installer per machine
                fcntl.flock(lock, fcntl.LOCK_EX)
                for name in missing:
                    con.execute(f"INSTALL {_quote(str(extension_file(name)))}")
        for name in EXTENSIONS:
            con.execute(f"LOAD {name}")

    def _attach_error(self, exc: duckdb.Error) -> StoreError:
        text = redact(str(exc).replace("\n", " "))
        if "does not exist - and creating a new DuckLake is explicitly disabled" in text or \
                "does not match existing data path" in text:
            reason = "has no laughtrack catalog yet" if "does not exist" in text else "uses another data folder"
            return StoreError(f"the DuckLake {redact(self.url)!r} {reason}: run `laughtrack db migrate --db … "
                              f"--lake-data {self.data}`")
        found = re.search(r"(connection to server.*|FATAL:.*)", text)
        detail = re.sub(r"\s+", " ", found.group(1) if found else text).strip()
        return StoreError(f"cannot open the DuckLake {redact(self.url)!r}: {detail[:300]}")

    def _connect_writer(self) -> duckdb.DuckDBPyConnection:
        return self._cursor(read_only=False)

    def _cursor(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        """A cursor on this process's attached instance for the role, attaching it the first time."""
        key = (os.getpid(), self.url, self.data, read_only)
        with _instances_lock:
            instance = _instances.get(key)
            if instance is None:
                instance = self._connect(read_only) if not read_only else self._confined()
                _instances[key] = instance
        try:
            cursor = instance.cursor()
            cursor.execute(f"USE {ALIAS}")
            return cursor
        except duckdb.Error:
            with _instances_lock:       # a dead instance (PostgreSQL restarted): attach again next time
                _instances.pop(key, None)
            raise

    def migrate(self) -> int:
        """Create the catalog (and the data folder) if there is none, then bring its schema up to date."""
        Path(self.data).mkdir(parents=True, exist_ok=True)
        con = self._connect(read_only=False, create=True)
        con.close()
        return super().migrate()

    def maintain(self, orphan_age_s: float, snapshot_age_s: float) -> dict[str, int]:
        """Fold inlined rows into Parquet, merge small files, expire old snapshots, then delete the files
        no snapshot needs and the orphans a killed writer left. `orphan_age_s` must exceed the longest
        write transaction: a younger unreferenced file may belong to a writer still committing."""
        steps = {
            "inlined tables flushed": f"CALL ducklake_flush_inlined_data('{ALIAS}')",
            "files merged": f"CALL ducklake_merge_adjacent_files('{ALIAS}')",
            "snapshots expired": f"CALL ducklake_expire_snapshots('{ALIAS}', older_than => "
                                 f"now() - to_seconds({float(snapshot_age_s)}))",
            "old files deleted": f"CALL ducklake_cleanup_old_files('{ALIAS}', older_than => "
                                 f"now() - to_seconds({float(snapshot_age_s)}))",
            "orphans deleted": f"CALL ducklake_delete_orphaned_files('{ALIAS}', older_than => "
                               f"now() - to_seconds({float(orphan_age_s)}))",
        }
        con = self._open_writer()
        try:
            return {what: len(retry(lambda sql=sql: con.execute(sql).fetchall(), wait_s=120))
                    for what, sql in steps.items()}
        finally:
            con.close()

    def _open_reader(self) -> duckdb.DuckDBPyConnection:
        return self._cursor(read_only=True)

    def _confined(self) -> duckdb.DuckDBPyConnection:
        """Read-only, and able to open files under the data folder only; then the settings are locked."""
        con = self._connect(read_only=True)
        try:
            con.execute(f"SET allowed_directories = [{_quote(self.data + '/')}]")
            con.execute(f"SET memory_limit = {_quote(self.limits.memory)}")
            con.execute(f"SET threads = {int(self.limits.threads)}")
            con.execute("SET temp_directory = ''")
            con.execute("SET enable_external_access = false")
            con.execute("SET lock_configuration = true")
        except BaseException:
            con.close()
            raise
        return con

    def _check_query(self, con: duckdb.DuckDBPyConnection, sql: str) -> None:
        """Only SELECT, and no function that reaches the catalog or files (those run even read-only)."""
        for statement in con.extract_statements(sql):
            if statement.type != duckdb.StatementType.SELECT:
                raise StoreError(f"the results are read-only here: only SELECT queries run "
                                 f"(got {statement.type.name})")
        tree = json.loads(con.execute("SELECT json_serialize_sql(?)", [sql]).fetchall()[0][0])
        names = {n for n in _function_names(tree) if FORBIDDEN_FUNCTIONS.match(n)}
        if names:
            raise StoreError(f"the results are read-only here: {', '.join(sorted(names))} is not allowed in queries")

    def _fault(self, exc: BaseException, context: str = "") -> StoreError:
        """One line for a failed write: a disk fault names the data folder, else DuckDB's reason."""
        found = fault(exc)
        if found:
            what, fix = found
            return StoreFault(f"the DuckLake {redact(self.url)!r} (data '{self.data}'): {what}; "
                              f"{fix.replace('give another --db', 'give another --lake-data')}")
        return StoreError(redact(str(exc).splitlines()[0]))

    def _error(self, exc: duckdb.Error) -> Exception:
        if fault(exc):
            return self._fault(exc)
        message = redact(str(exc).splitlines()[0])
        if "read-only" in message.lower() or "read only" in message.lower():
            message = f"the results are read-only here; queries cannot change them ({message})"
        return StoreError(message)


def _function_names(node) -> set[str]:
    """Every function and table-function name in a json_serialize_sql tree."""
    found: set[str] = set()
    if isinstance(node, dict):
        if node.get("type") in ("FUNCTION", "TABLE_FUNCTION") or "function_name" in node:
            name = node.get("function_name")
            if isinstance(name, str):
                found.add(name)
        for value in node.values():
            found |= _function_names(value)
    elif isinstance(node, list):
        for value in node:
            found |= _function_names(value)
    return found
