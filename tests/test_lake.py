"""The DuckLake backend against a real PostgreSQL: the catalog made once, clear errors, readers that
cannot write or wander, and exactly one copy of an analysis when two writers race for it."""

from __future__ import annotations

import multiprocessing as mp

import pytest
from pgtmp import create_database, temporary_postgres
from test_store import count, job, rows

from laughtrack.errors import StoreError
from laughtrack.store import StoreConfig, open_store
from laughtrack.store.schema import SCHEMA_VERSION

pytestmark = pytest.mark.scale


@pytest.fixture(scope="module")
def postgres():
    with temporary_postgres() as conninfo:
        yield conninfo


_databases = iter(range(1000))


@pytest.fixture
def lake(postgres, tmp_path) -> StoreConfig:
    """A fresh, migrated DuckLake (its own PostgreSQL database, its own data folder)."""
    conninfo = create_database(postgres, f"lake{next(_databases)}")
    config = StoreConfig(f"ducklake:postgres:{conninfo}", str(tmp_path / "lake"), str(tmp_path / "cache"))
    assert open_store(config).migrate() == 0
    return config


def test_a_catalog_is_made_by_migrate_only_and_writers_say_so(postgres, tmp_path):
    config = StoreConfig(f"ducklake:postgres:{postgres}", str(tmp_path / "lake"), str(tmp_path / "cache"))
    store = open_store(config)
    assert not store.exists() and store.done_analyses(["x"]) == set()
    with pytest.raises(StoreError, match="no laughtrack catalog yet: run `laughtrack db migrate"):
        store.write_analysis(rows())
    assert store.migrate() == 0 and store.migrate() == SCHEMA_VERSION and store.exists()
    assert store.write_analysis(rows()) is True and store.write_analysis(rows()) is False
    assert count(store, "engagement") == 1 and count(store, "windows") == 8


def test_an_unreachable_catalog_is_one_line_without_the_password(tmp_path):
    store = open_store(StoreConfig("ducklake:postgres:dbname=x host=127.0.0.1 port=1 user=u password=s3cret",
                                   str(tmp_path / "lake"), str(tmp_path / "cache")))
    with pytest.raises(StoreError) as info:
        store.query("SELECT 1")
    message = str(info.value)
    assert "Connection refused" in message and "s3cret" not in message and "\n" not in message


def test_a_lake_needs_its_data_folder():
    with pytest.raises(ValueError, match="--lake-data"):
        open_store(StoreConfig("ducklake:postgres:dbname=x"))
    with pytest.raises(ValueError, match="PostgreSQL"):
        open_store(StoreConfig("ducklake:sqlite:x.db", "/tmp/x"))


@pytest.mark.parametrize("sql", [
    "DELETE FROM videos", "COPY videos TO '{data}/x.csv'", "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM ducklake_cleanup_old_files('lake', cleanup_all => true)",
    "SELECT * FROM postgres_query('__ducklake_metadata_lake', 'SELECT 1')",
    "CALL postgres_execute('__ducklake_metadata_lake', 'CREATE TABLE pwn (a int)')",
    "SET enable_external_access = true", "ATTACH 'other.duckdb' AS o"])
def test_queries_cannot_write_or_reach_the_catalog_or_files(lake, sql):
    store = open_store(lake)
    store.write_analysis(rows())
    with pytest.raises(StoreError, match="read-only"):
        store.query(sql.format(data=lake.lake_data))
    assert count(store, "videos") == 1


def _racer(config: StoreConfig, barrier, serialize: bool, out) -> None:
    """A writer that stops right after finding the analysis absent until the other one has too."""
    from laughtrack.store import writes as sql
    if not serialize:
        sql.SERIALIZE_SQL = "SELECT 1 AS {lock}"
    first = sql._add_video

    def meet(*args):
        if not getattr(meet, "met", False):
            meet.met = True
            barrier.wait(timeout=60)
        return first(*args)
    sql._add_video = meet
    out.put(open_store(config).write_analysis(rows()))


@pytest.mark.timeout(300)
@pytest.mark.parametrize("serialize", [True, False])
def test_two_writers_that_both_found_it_absent_store_it_once(lake, serialize):
    """The serializing write lock is what keeps it once: without it, both commit (DuckLake has no
    UNIQUE), which is what the unserialized run shows."""
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_racer, args=(lake, barrier, serialize, out)) for _ in range(2)]
    for p in procs:
        p.start()
    results = sorted(out.get(timeout=240) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    copies = open_store(lake).query("SELECT count(*) FROM analyses WHERE analysis_id = ?", [job().analysis_id])[1]
    if serialize:
        assert results == [False, True] and copies == [(1,)]
    else:
        assert results == [True, True] and copies == [(2,)]
