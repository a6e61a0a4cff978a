"""The schema's life: create it, or bring an older database up to SCHEMA_VERSION (one transaction)."""

from __future__ import annotations

from datetime import datetime, timezone

import duckdb

from laughtrack.errors import StoreError
from laughtrack.store import schema


def now() -> datetime:
    return datetime.now(timezone.utc)


def migrate(con: duckdb.DuckDBPyConnection, constraints: bool = True) -> int:
    """Bring the schema up to SCHEMA_VERSION (one transaction); return the version found before."""
    if not has_table(con, "schema_version"):
        con.execute(schema.TABLES["schema_version"].ddl())
    found = version(con)
    if found > schema.SCHEMA_VERSION:
        raise StoreError(f"database schema v{found} is newer than this laughtrack (v{schema.SCHEMA_VERSION}); "
                         "upgrade laughtrack")
    if found == schema.SCHEMA_VERSION:
        return found
    con.execute("BEGIN TRANSACTION")
    try:
        if found == 0:
            for statement in schema.create_statements(constraints)[1:]:   # [0] is schema_version
                con.execute(statement)
        else:
            for older in range(found, schema.SCHEMA_VERSION):
                for statement in schema.MIGRATIONS[older]:
                    con.execute(statement)
            for view in schema.VIEWS:
                con.execute(view.ddl())
        con.execute("INSERT INTO schema_version VALUES (?, ?)", [schema.SCHEMA_VERSION, now()])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return found


def version(con: duckdb.DuckDBPyConnection) -> int:
    """The schema version of the database (0 when it has no laughtrack tables yet)."""
    if not has_table(con, "schema_version"):
        return 0
    return con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchall()[0][0]


def has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM information_schema.tables WHERE table_catalog = current_database() "
                            "AND table_schema = 'main' AND table_name = ?", [name]).fetchall()[0][0])
