"""Settings read once at the edge (CLI, flow entry): explicit value, else environment, else default."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sensevoice_core import DEFAULT_HUB_ID

ENV = {"db": "LAUGHTRACK_DB", "model": "LAUGHTRACK_MODEL", "cache_dir": "LAUGHTRACK_CACHE",
       "inbox": "LAUGHTRACK_INBOX", "device": "LAUGHTRACK_DEVICE", "report_dir": "LAUGHTRACK_REPORTS",
       "backend": "LAUGHTRACK_BACKEND"}


@dataclass(frozen=True)
class Settings:
    db: str
    model: str
    cache_dir: str
    inbox: str
    device: str
    report_dir: str
    backend: str = "auto"   # auto | torch | onnx-int8 (sensevoice_core.model.resolve_backend)

    @classmethod
    def resolve(cls, **given: str | None) -> Settings:
        """Each field: the given value if not None/empty, else $LAUGHTRACK_*, else the default."""
        def pick(name: str, default: str) -> str:
            value = given.get(name)
            return str(value) if value else os.environ.get(ENV[name]) or default
        db = pick("db", "laughtrack.duckdb")
        return cls(db=db, model=pick("model", DEFAULT_HUB_ID),
                   cache_dir=pick("cache_dir", str(Path.home() / ".cache" / "laughtrack")),
                   inbox=pick("inbox", "inbox"), device=pick("device", "auto"),
                   report_dir=pick("report_dir", str(Path(db).with_name(f"{Path(db).stem}-reports"))),
                   backend=pick("backend", "auto"))
