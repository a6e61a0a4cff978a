"""What laughtrack keeps in its cache folder, and pruning it (`laughtrack cache prune`).

The cache holds what can be made again: each audio stream's extracted PCM (`pcm/`, 32 kB per
second of audio: 230 MB for a 2-hour video) and the page's copies of its uploads (`ui-uploads/`,
one per content). Pruning removes the least recently used of those by age and/or down to a total
size. The int8 export of the model (`onnx/`, a minute to rebuild), the model's identity and the
DuckDB extensions stay.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

PRUNABLE = ("pcm", "ui-uploads")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_SIZES = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12, "kib": 2**10, "mib": 2**20,
          "gib": 2**30, "tib": 2**40}


@dataclass(frozen=True, slots=True)
class Entry:
    """One thing the cache can lose: a PCM file with its recorded size, or one upload's folder."""

    paths: tuple[Path, ...]
    size: int
    used_at: float          # last modified; a reused PCM file is touched, so this is "last used"

    @property
    def name(self) -> str:
        return str(self.paths[0])


def entries(cache_dir: Path) -> list[Entry]:
    """Everything prunable in `cache_dir`, least recently used first."""
    found = []
    for pcm in (Path(cache_dir) / "pcm").glob("*.s16"):
        parts = tuple(p for p in (pcm, pcm.with_name(pcm.name + ".bytes")) if p.exists())
        found.append(Entry(parts, sum(_size(p) for p in parts), _mtime(pcm)))
    for folder in (Path(cache_dir) / "ui-uploads").glob("*"):
        if folder.is_dir():
            files = [p for p in folder.rglob("*") if p.is_file()]
            found.append(Entry((folder,), sum(_size(p) for p in files), max(map(_mtime, files), default=0.0)))
    return sorted(found, key=lambda e: e.used_at)


def prune(cache_dir: Path, older_than_s: float | None = None, max_bytes: int | None = None,
          dry_run: bool = False, now: float | None = None) -> tuple[list[Entry], int]:
    """Remove entries unused for `older_than_s`, then the least recently used until at most
    `max_bytes` remain; (what was removed, bytes kept)."""
    now = time.time() if now is None else now
    kept, removed = entries(cache_dir), []
    if older_than_s is not None:
        removed = [e for e in kept if now - e.used_at > older_than_s]
        kept = [e for e in kept if e not in removed]
    total = sum(e.size for e in kept)
    while max_bytes is not None and kept and total > max_bytes:
        oldest = kept.pop(0)
        removed.append(oldest)
        total -= oldest.size
    if not dry_run:
        for entry in removed:
            for path in entry.paths:
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
    return removed, total


def parse_age(text: str) -> float:
    """`90` (seconds), `30m`, `12h`, `7d`, `2w` → seconds; ValueError otherwise."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text.lower())
    if not found:
        raise ValueError(f"age {text!r}: give e.g. 12h, 7d or 2w")
    return float(found.group(1)) * _UNITS[found.group(2) or "s"]


def parse_size(text: str) -> int:
    """`500MB`, `2GB`, `1GiB` → bytes; ValueError otherwise."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b|b)\s*", text.lower())
    if not found:
        raise ValueError(f"size {text!r}: give e.g. 500MB or 2GB")
    return int(float(found.group(1)) * _SIZES[found.group(2)])


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _mtime(path: Path) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0
