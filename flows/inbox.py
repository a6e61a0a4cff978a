"""The scheduled inbox scan: start one analysis run per new upload, never two.

    inbox ─► new uploads (content hash not yet analysed) ─► run_deployment(analyze-upload)

Each run is started with an idempotency key made of the content hash and the analysis config, so
a second scan (or a scan racing the upload trigger's run) starts nothing new on the server.
"""

from __future__ import annotations

import time
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.deployments import run_deployment

from laughtrack import inbox as inbox_mod, media, store
from laughtrack.analysis import CODE_VERSION, AnalysisParams, config_key
from laughtrack.settings import Settings
from sensevoice_core import model_identity

UPLOAD_DEPLOYMENT = "analyze-video/analyze-upload"
MIN_AGE_S = 10.0   # a file modified more recently may still be uploading; the next scan takes it


@task(name="new-uploads")
def new_uploads(inbox: str, db: str, model_sha: str, params: AnalysisParams) -> list[dict]:
    """Complete uploads in the inbox whose content has no analysis with this config yet."""
    done = store.analysed_shas(Path(db), model_sha, params.to_json(), CODE_VERSION)
    found, now = [], time.time()
    for path in inbox_mod.candidates(Path(inbox)):
        real = inbox_mod.inside(Path(inbox), path)
        if real is None or now - real.stat().st_mtime < MIN_AGE_S:
            continue
        sha = media.content_sha256(real)
        if sha not in done:
            found.append({"path": str(path.absolute()), "sha256": sha})
    return found


@task(name="start-analyses")
def start_analyses(uploads: list[dict], key: str, deployment: str) -> list[str]:
    """One analyze-upload run per upload, keyed so that repeats return the existing run."""
    ids = []
    for u in uploads:
        run = run_deployment(deployment, parameters={"path": u["path"], "sha256": u["sha256"]},
                             idempotency_key=f"laughtrack:{u['sha256']}:{key}", timeout=0, as_subflow=False)
        ids.append(str(run.id))
    return ids


@flow(name="analyze-inbox")
def analyze_inbox(inbox: str | None = None, db: str | None = None, model: str | None = None,
                  deployment: str = UPLOAD_DEPLOYMENT) -> dict:
    """Analyse media in the inbox not yet analysed. Unset: $LAUGHTRACK_INBOX/_DB/_MODEL."""
    s = Settings.resolve(inbox=inbox, db=db, model=model)
    params = AnalysisParams()
    _, model_sha = model_identity(s.model)
    uploads = new_uploads(s.inbox, s.db, model_sha, params)
    runs = start_analyses(uploads, config_key(model_sha, params), deployment)
    get_run_logger().info("inbox %s: %d new upload(s), %d run(s) started or already running",
                          s.inbox, len(uploads), len(runs))
    return {"uploads": uploads, "flow_runs": runs}
