"""The scheduled report flow: rebuild every page and the collection index from DuckDB."""

from __future__ import annotations

from prefect import flow

from laughtrack.settings import Settings
from tasks.report import build_reports


@flow(name="engagement-report")
def engagement_report(db: str | None = None, out: str | None = None) -> str:
    """Rebuild all per-video reports and the collection report; return the index path.
    Unset: $LAUGHTRACK_DB / $LAUGHTRACK_REPORTS, else laughtrack.duckdb and <db>-reports/."""
    s = Settings.resolve(db=db, report_dir=out)
    return build_reports(s.db, s.report_dir, None)
