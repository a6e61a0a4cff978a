"""The scheduled report flow: rebuild every page and the collection index from the results store."""

from __future__ import annotations

import os

from prefect import flow

from laughtrack.config import RunConfig
from tasks.report import build_reports


@flow(name="engagement-report")
def engagement_report(config: RunConfig | None = None) -> str:
    """Rebuild all per-video reports and the collection report; return the index path.
    Without `config`: $LAUGHTRACK_DB / $LAUGHTRACK_REPORTS, else laughtrack.duckdb and <db>-reports/."""
    config = config or RunConfig.from_env(os.environ)
    return build_reports(config.store, config.reports, None, most_pages=None)[0]
