"""report: the DAG's last step — HTML + PNG from the results store alone, and the run's artifacts."""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

from prefect import task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from laughtrack.records import Failure
from laughtrack.store import StoreConfig, open_store
from reports.site import write_reports


PAGES_PER_RUN = 50      # an analyze run draws the pages of its 50 most engaging videos; `laughtrack report` the rest


@task(name="report", cache_policy=NO_CACHE)
def build_reports(db: StoreConfig, out: str, video_ids: list[str] | None,
                  most_pages: int | None = PAGES_PER_RUN) -> tuple[str, int]:
    """Write the pages of `video_ids` (None: all; at most `most_pages`) and the collection index;
    (the index path, how many pages were left for `laughtrack report`)."""
    store = open_store(db)
    if not store.exists() or not store.report_targets():
        return "", 0
    written = write_reports(store, Path(out), video_ids, most_pages, workers=os.cpu_count() or 1)
    return str(written.index.resolve()), written.left


@task(name="artifacts", cache_policy=NO_CACHE)
def publish_artifacts(db: StoreConfig, analysis_ids: list[str], skipped: int, failures: list[Failure], index: str) -> None:
    """A markdown summary, the per-minute density table and a link to the HTML, on the flow run."""
    store = open_store(db)
    engagement = store.engagement(analysis_ids)
    minutes = [asdict(m) for m in store.minute_table(analysis_ids)] if analysis_ids else []
    lines = [f"# laughtrack: {len(analysis_ids)} analysed, {skipped} already analysed, {len(failures)} failed", ""]
    if engagement:
        lines += ["| file | stream | minutes | laughs/min | applause/min | engagement |", "|---|---|---|---|---|---|"]
        lines += [f"| {e.path} | {e.stream_index} | {(e.duration_s or 0) / 60:.1f} | {e.laughs_per_min or 0:.2f} | "
                  f"{e.applause_per_min or 0:.2f} | {e.engagement_score or 0:.2f} |" for e in engagement]
    if failures:
        lines += ["", "## Failures", ""] + [f"- `{f.path}` ({f.stage}): {f.message}" for f in failures]
    create_markdown_artifact("\n".join(lines), key="laughtrack-summary", description="laughtrack run summary")
    if minutes:
        create_table_artifact([{k: v for k, v in m.items() if k != "analysis_id"} for m in minutes],
                              key="laughtrack-minute-density", description="per-minute density")
    if index:
        create_link_artifact(Path(index).as_uri(), link_text="engagement report (HTML)", key="laughtrack-report")
