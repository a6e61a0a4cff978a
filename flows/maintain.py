"""The nightly store maintenance: merge small files, expire old snapshots, delete orphaned files.

On a DuckLake every commit adds small Parquet files and a snapshot, and a writer killed before its
commit leaves files no snapshot references; this keeps the lake compact and clean. On a DuckDB
file it is a checkpoint.
"""

from __future__ import annotations

import os

from prefect import flow, get_run_logger

from laughtrack.config import RunConfig
from laughtrack.store import open_store

ORPHAN_AGE_S = 3600.0          # longer than any write transaction: younger files may be a commit in flight
SNAPSHOT_AGE_S = 7 * 86400.0   # time travel kept for a week


@flow(name="maintain-store")
def maintain_store(config: RunConfig | None = None, orphan_age_s: float = ORPHAN_AGE_S,
                   snapshot_age_s: float = SNAPSHOT_AGE_S) -> dict[str, int]:
    """Compact and clean the results store. Without `config`: the worker's $LAUGHTRACK_*."""
    config = config or RunConfig.from_env(os.environ)
    done = open_store(config.store).maintain(orphan_age_s=orphan_age_s, snapshot_age_s=snapshot_age_s)
    get_run_logger().info("maintained %s: %s", config.store, done)
    return done
