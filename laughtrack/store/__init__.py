"""The results store: one interface, one schema (schema.py), backends behind `open_store`.

    store = open_store("results.duckdb")        # a path: one DuckDB file (the embedded default)
    store.write_analysis(rows)                  # one transaction; False if it was already there
    store.done_analyses(ids); store.done_contents(config_key)
    store.query("SELECT * FROM engagement")     # read-only, never migrates

Everything that speaks SQL lives in this package; the rest of laughtrack calls these methods.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from laughtrack.errors import StoreError
from laughtrack.records import Failure, Video
from laughtrack.store.rows import AnalysisRows


class Store(Protocol):
    """What the pipeline, the CLI and the reports need from a results database."""

    url: str

    def exists(self) -> bool: ...
    def write_analysis(self, rows: AnalysisRows) -> bool: ...
    def note_path(self, video: Video, path: str) -> None: ...
    def record_failures(self, failures: list[Failure]) -> None: ...
    def done_analyses(self, analysis_ids: list[str]) -> set[str]: ...
    def done_contents(self, config_key: str) -> set[str]: ...
    def query(self, sql: str, params: list | None = None) -> tuple[list[str], list[tuple]]: ...
    def relations(self) -> tuple[list[str], list[tuple]]: ...
    def minute_table(self, analysis_ids: list[str]) -> list[dict]: ...
    def engagement(self, analysis_ids: list[str]) -> list[dict]: ...
    def report_targets(self, video_ids: list[str] | None = None) -> list[dict]: ...
    def video_report_data(self, analysis_id: str) -> dict[str, list[dict]]: ...
    def collection_report_data(self) -> dict[str, list[dict]]: ...


def open_store(url: str | Path) -> Store:
    """The store at `url`: a path is a DuckDB file (created on first write)."""
    from laughtrack.store.duckdb_file import DuckDBFile
    return DuckDBFile(Path(url))


__all__ = ["AnalysisRows", "Store", "StoreError", "open_store"]
