"""The scheduled inbox scan: start one analysis run per new upload, never two.

    inbox ─► new uploads (content not yet analysed under this configuration) ─► run_deployment(analyze-upload)

Each run is started with an idempotency key made of the content hash and the configuration's
key, so a second scan (or a scan racing the upload trigger's run) starts nothing new.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.deployments import run_deployment

from laughtrack import inbox as inbox_mod, media
from laughtrack.config import RunConfig
from laughtrack.errors import MediaError
from laughtrack.inbox import Upload
from laughtrack.store import open_store

UPLOAD_DEPLOYMENT = "analyze-video/analyze-upload"
MIN_AGE_S = 10.0   # a file modified more recently may still be uploading; the next scan takes it


@dataclass(frozen=True)
class InboxScan:
    """What one scan found and started."""

    uploads: list[Upload]
    flow_runs: list[str]


@task(name="new-uploads", cache_policy=NO_CACHE)
def new_uploads(inbox: str, db: str, config_key: str) -> list[Upload]:
    """Complete uploads in the inbox whose content has no analysis under `config_key` yet."""
    done = open_store(db).done_contents(config_key)
    found, now = [], time.time()
    for path in inbox_mod.candidates(Path(inbox)):
        real = inbox_mod.inside(Path(inbox), path)
        if real is None or now - real.stat().st_mtime < MIN_AGE_S:
            continue
        try:
            sha, state = media.fingerprint(real)
        except MediaError:   # still being written: the next scan takes it
            continue
        if sha not in done:
            found.append(Upload(path.absolute(), state.size, sha))
    return found


@task(name="start-analyses", cache_policy=NO_CACHE)
def start_analyses(uploads: list[Upload], config_key: str, deployment: str) -> list[str]:
    """One analyze-upload run per upload, keyed so that repeats return the existing run."""
    ids = []
    for u in uploads:
        run = run_deployment(deployment, parameters={"path": str(u.path), "sha256": u.sha256},
                             idempotency_key=f"laughtrack:{u.sha256}:{config_key}", timeout=0, as_subflow=False)
        ids.append(str(run.id))
    return ids


@flow(name="analyze-inbox")
def analyze_inbox(config: RunConfig | None = None, deployment: str = UPLOAD_DEPLOYMENT) -> InboxScan:
    """Analyse media in the inbox not yet analysed. Without `config`: the worker's $LAUGHTRACK_*."""
    config = config or RunConfig.from_env(os.environ)
    key = config.engine().config_key(config.params).id
    uploads = new_uploads(config.inbox, config.db, key)
    runs = start_analyses(uploads, key, deployment)
    get_run_logger().info("inbox %s: %d new upload(s), %d run(s) started or already running",
                          config.inbox, len(uploads), len(runs))
    return InboxScan(uploads, runs)
