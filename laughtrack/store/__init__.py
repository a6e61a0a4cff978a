"""The results store: one interface, one schema (schema.py), two backends behind `open_store`.

    store = open_store("results.duckdb")        # a path: one DuckDB file (the embedded default)
    store = open_store(StoreConfig("ducklake:postgres:dbname=lt host=db", lake_data="/mnt/lake"))
    store.write_analysis(rows)                  # one transaction; False if it was already there
    store.done_analyses(ids); store.done_contents(config_key)
    store.query("SELECT * FROM engagement")     # read-only, never migrates

Everything that speaks SQL lives in this package; the rest of laughtrack calls these methods.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from typing import TYPE_CHECKING

from laughtrack.errors import StoreError
from laughtrack.records import Failure, Video
from laughtrack.store.rows import AnalysisRows

if TYPE_CHECKING:
    from laughtrack.events import EventOptions
    from laughtrack.store.records import (
        CollectionReport, Engagement, MinuteDensity, ReportTarget, StoredEvent, TranscriptSegment, VideoReport,
        WindowProbs,
    )

LAKE_PREFIX = "ducklake:postgres:"


@dataclass(frozen=True)
class QueryLimits:
    """What a reader may take of the machine: wall time per user query, memory and threads. The
    defaults suit a shared machine; `--timeout-s`/`--memory`/`--threads` of `laughtrack query` and
    $LAUGHTRACK_QUERY_* change them."""

    timeout_s: float = 60.0
    memory: str = "1GB"        # DuckDB's memory_limit: a query that needs more fails, nothing is spilled to disk
    threads: int = 2

    def validate(self) -> QueryLimits:
        if not self.timeout_s > 0:
            raise ValueError(f"query timeout {self.timeout_s!r}: give seconds > 0")
        if not re.fullmatch(r"\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)", self.memory, re.I):
            raise ValueError(f"query memory {self.memory!r}: give a size such as 512MB or 2GB")
        if self.threads < 1:
            raise ValueError(f"query threads {self.threads!r}: give 1 or more")
        return self


@dataclass(frozen=True)
class StoreConfig:
    """Where the results live: a DuckDB file path, or a DuckLake (PostgreSQL catalog + data dir)."""

    url: str
    lake_data: str = ""        # DuckLake: the Parquet folder every writer and reader mounts
    cache_dir: str = ""        # DuckLake: where the pinned DuckDB extensions are installed
    limits: QueryLimits = field(default_factory=QueryLimits)

    @property
    def is_lake(self) -> bool:
        return self.url.startswith(LAKE_PREFIX)

    def __str__(self) -> str:
        """For messages: the path, or the catalog URL without its password."""
        from laughtrack.store.ducklake import redact
        return redact(self.url)

    def validate(self) -> StoreConfig:
        if self.url.startswith("ducklake:") and not self.is_lake:
            raise ValueError(f"--db {self.url!r}: the catalog must be PostgreSQL: ducklake:postgres:<conninfo>")
        if self.is_lake and not self.lake_data:
            raise ValueError("a DuckLake needs its data folder: --lake-data DIR (or LAUGHTRACK_LAKE_DATA)")
        self.limits.validate()
        return self


class Store(Protocol):
    """What the pipeline, the CLI and the reports need from a results database. Reads give back
    typed records (records.py); the user's own SQL (`query`) gives back what the user asked for."""

    url: str

    def exists(self) -> bool: ...
    def migrate(self) -> int: ...
    def maintain(self, orphan_age_s: float, snapshot_age_s: float) -> dict[str, int]: ...
    # writes (writes.py)
    def write_analysis(self, rows: AnalysisRows) -> bool: ...
    def write_analyses(self, many: list[AnalysisRows]) -> list[bool | Exception]: ...
    def note_path(self, video: Video, path: str, stream_index: int) -> None: ...
    def record_failures(self, failures: list[Failure]) -> None: ...
    def save_event_set(self, name: str, options_json: str, source: str, f1_before: float, f1_after: float) -> None: ...
    # the user's read-only SQL (sql.py)
    def query(self, sql: str, params: list | None = None, max_rows: int | None = None) -> tuple[list[str], list[tuple]]: ...
    def relations(self) -> tuple[list[str], list[tuple]]: ...
    # reads (reads.py)
    def done_analyses(self, analysis_ids: list[str]) -> set[str]: ...
    def done_contents(self, config_key: str) -> set[str]: ...
    def event_set(self, name: str) -> EventOptions | None: ...
    def durations(self, analysis_ids: list[str]) -> dict[str, float]: ...
    def minute_table(self, analysis_ids: list[str]) -> list[MinuteDensity]: ...
    def engagement(self, analysis_ids: list[str]) -> list[Engagement]: ...
    def report_targets(self, video_ids: list[str] | None = None) -> list[ReportTarget]: ...
    def target(self, video_id: str, stream_index: int) -> ReportTarget: ...
    def find_videos(self, ref: str) -> list[str]: ...
    def transcript(self, analysis_id: str) -> list[TranscriptSegment]: ...
    def events(self, analysis_id: str) -> list[StoredEvent]: ...
    def window_probs(self, analysis_id: str, family: str = "event") -> WindowProbs: ...
    def video_report(self, analysis_id: str) -> VideoReport: ...
    def collection_report(self) -> CollectionReport: ...


def open_store(where: StoreConfig | str | Path) -> Store:
    """The store a StoreConfig (or a plain DuckDB file path) names; nothing is opened yet."""
    config = where if isinstance(where, StoreConfig) else StoreConfig(str(where))
    if config.validate().is_lake:
        from laughtrack.store.ducklake import DuckLake
        return DuckLake(config)
    from laughtrack.store.duckdb_file import DuckDBFile
    return DuckDBFile(Path(config.url), config.limits)


__all__ = ["AnalysisRows", "LAKE_PREFIX", "QueryLimits", "Store", "StoreConfig", "StoreError", "open_store"]
