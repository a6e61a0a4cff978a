"""The inbox reconciler: every complete upload ends up analysed, once, whatever crashed meanwhile.

    inbox ─► uploads not analysed under this configuration ─► minus those with a live run
          ─► one analyze-upload run each (keyed by content, configuration and attempt)

Scheduled every few minutes (prefect.yaml, one at a time). A run that a killed worker left behind
is marked Crashed by the zombie automation (automations.yaml); the next scan starts the upload
again under the next attempt's key, up to MAX_ATTEMPTS. The same key twice returns the existing
run, so two scans never double a run; a run that completed without an analysis recorded its
failure (a broken file) and is not repeated.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import StateType
from prefect.deployments import run_deployment

from laughtrack import faults, inbox as inbox_mod, media
from laughtrack.config import RunConfig
from laughtrack.errors import MediaError
from laughtrack.inbox import Upload
from laughtrack.store import StoreConfig, open_store

UPLOAD_DEPLOYMENT = "analyze-video/analyze-upload"
MIN_AGE_S = 10.0      # a file modified more recently may still be uploading; the next scan takes it
MAX_ATTEMPTS = 3      # runs per upload that may crash or fail before the reconciler gives up
LIVE = (StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING, StateType.PAUSED, StateType.CANCELLING)
RETRY = (StateType.CRASHED, StateType.FAILED)


@dataclass(frozen=True)
class InboxScan:
    """What one scan found and did."""

    uploads: list[Upload]       # complete and not analysed under this configuration
    started: list[str]          # flow runs started (or found already started under their key)
    running: int                # uploads with a live run: left alone
    given_up: list[str]         # paths whose last MAX_ATTEMPTS runs crashed or failed


def run_key(sha256: str, config_key: str, attempt: int) -> str:
    """The idempotency key of one upload's run: a repeated scan gets the existing run back."""
    return f"laughtrack:{sha256}:{config_key}:{attempt}"


def next_attempt(states: list[StateType | None]) -> int | None:
    """Given the states of attempts 0, 1, … (None: never started), the attempt to start now, or
    None when there is nothing to do (a live run, a finished one, or all attempts used)."""
    for attempt, state in enumerate(states):
        if state is None:
            return attempt
        if state not in RETRY:
            return None
    return None


@task(name="new-uploads", cache_policy=NO_CACHE)
def new_uploads(inbox: str, store: StoreConfig, config_key: str) -> list[Upload]:
    """Complete uploads in the inbox whose content has no analysis under `config_key` yet."""
    done = open_store(store).done_contents(config_key)
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


@task(name="plan-runs", cache_policy=NO_CACHE)
def plan_runs(uploads: list[Upload], config_key: str, deployment: str) -> tuple[list[tuple[Upload, int]], int, list]:
    """(uploads to start with their attempt, uploads with a live run, uploads given up)."""
    live, keyed = _server_runs(uploads, config_key, deployment)
    starts, running, given_up = [], 0, []
    for u in uploads:
        if u.sha256 in live:
            running += 1
            continue
        states = [keyed.get(run_key(u.sha256, config_key, a)) for a in range(MAX_ATTEMPTS)]
        attempt = next_attempt(states)
        if attempt is not None:
            starts.append((u, attempt))
        elif all(s in RETRY for s in states):
            given_up.append(str(u.path))
    return starts, running, given_up


def _server_runs(uploads: list[Upload], config_key: str, deployment: str) -> tuple[set[str], dict]:
    """(sha256s with a live run of the deployment — event-triggered ones too —, key → state type)."""
    from prefect import get_client
    from prefect.client.schemas.filters import (DeploymentFilter, DeploymentFilterName, FlowRunFilter,
                                                FlowRunFilterIdempotencyKey, FlowRunFilterState,
                                                FlowRunFilterStateType)
    keys = [run_key(u.sha256, config_key, a) for u in uploads for a in range(MAX_ATTEMPTS)]
    with get_client(sync_client=True) as client:
        live_runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[deployment.split("/")[-1]])),
            flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=list(LIVE)))))
        keyed = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            idempotency_key=FlowRunFilterIdempotencyKey(any_=keys))) if keys else []
    live = {str(r.parameters.get("sha256")) for r in live_runs}
    return live, {r.idempotency_key: r.state.type if r.state else None for r in keyed}


@task(name="start-analyses", cache_policy=NO_CACHE)
def start_analyses(starts: list[tuple[Upload, int]], config_key: str, deployment: str) -> list[str]:
    """One analyze-upload run per upload, keyed so that repeats return the existing run."""
    ids = []
    for u, attempt in starts:
        run = run_deployment(deployment, parameters={"path": str(u.path), "sha256": u.sha256},
                             idempotency_key=run_key(u.sha256, config_key, attempt), timeout=0, as_subflow=False)
        ids.append(str(run.id))
    return ids


@flow(name="analyze-inbox")
def analyze_inbox(config: RunConfig | None = None, deployment: str = UPLOAD_DEPLOYMENT) -> InboxScan:
    """Start a run for every upload without an analysis and without a live run. Without `config`:
    the worker's $LAUGHTRACK_* environment."""
    faults.arm(*(os.environ.get(name) for name in faults.FAULT_VARS))     # crash tests only
    config = config or RunConfig.from_env(os.environ)
    config = config.resolved(open_store(config.store))
    key = config.engine().config_key(config.params).id
    uploads = new_uploads(config.inbox, config.store, key)
    starts, running, given_up = plan_runs(uploads, key, deployment)
    scan = InboxScan(uploads, start_analyses(starts, key, deployment), running, given_up)
    get_run_logger().info("inbox %s: %d upload(s) to analyse, %d run(s) started, %d running, %d given up "
                          "after %d attempts", config.inbox, len(uploads), len(scan.started), running,
                          len(given_up), MAX_ATTEMPTS)
    return scan
