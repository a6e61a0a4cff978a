"""report: the DAG's last step — HTML + PNG from DuckDB alone, and the run's Prefect artifacts."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

from laughtrack import store
from laughtrack.reporting import write_reports


@task(name="report")
def build_reports(db: str, out: str, video_ids: list[str] | None) -> str:
    """Write the pages of `video_ids` (None: all) and the collection index; return the index path."""
    if not Path(db).exists() or not store.report_targets(Path(db)):
        return ""
    written = write_reports(Path(db), Path(out), video_ids)
    return str(written.index.resolve())


@task(name="artifacts")
def publish_artifacts(db: str, analysis_ids: list[str], skipped: int, failures: list[dict], index: str) -> None:
    """A markdown summary, the per-minute density table and a link to the HTML, on the flow run."""
    engagement = []
    minutes = []
    if analysis_ids:
        names, rows = store.query(Path(db), "SELECT path, stream_index, duration_s, laughs_per_min, "
                                            "applause_per_min, engagement_score FROM engagement "
                                            "WHERE analysis_id IN (SELECT unnest(?))", [analysis_ids])
        engagement = [dict(zip(names, r)) for r in rows]
        minutes = [{k: v for k, v in m.items() if k != "analysis_id"} for m in store.minute_table(Path(db), analysis_ids)]
    lines = [f"# laughtrack: {len(analysis_ids)} analysed, {skipped} already analysed, {len(failures)} failed", ""]
    if engagement:
        lines += ["| file | stream | minutes | laughs/min | applause/min | engagement |", "|---|---|---|---|---|---|"]
        lines += [f"| {e['path']} | {e['stream_index']} | {e['duration_s'] / 60:.1f} | {e['laughs_per_min']:.2f} | "
                  f"{e['applause_per_min']:.2f} | {e['engagement_score']:.2f} |" for e in engagement]
    if failures:
        lines += ["", "## Failures", ""] + [f"- `{f['path']}` ({f['stage']}): {f['message']}" for f in failures]
    create_markdown_artifact("\n".join(lines), key="laughtrack-summary", description="laughtrack run summary")
    if minutes:
        create_table_artifact(minutes, key="laughtrack-minute-density", description="per-minute density")
    if index:
        create_link_artifact(Path(index).as_uri(), link_text="engagement report (HTML)", key="laughtrack-report")
