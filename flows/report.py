"""The scheduled report flow: rebuild every page and the collection index from DuckDB."""

from __future__ import annotations

from prefect import flow

from flows.analyze import default_report_dir
from tasks.report import build_reports


@flow(name="engagement-report")
def engagement_report(db: str = "laughtrack.duckdb", out: str | None = None) -> str:
    """Rebuild all per-video reports and the collection report; return the index path."""
    return build_reports(db, out or default_report_dir(db), None)
