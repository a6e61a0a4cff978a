"""A model's identity: the sha256 of its manifest (or of model.pt), verified, and remembered.

A 940 MB model is read once: its sha256 is remembered for this process and, in the cache dir,
across processes, keyed by every file's size, mtime, ctime and inode — any change to a file
(which also changes its ctime, which no user can set back) verifies the files again.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from sensevoice_core.errors import ModelIntegrityError
from sensevoice_core.hub import resolve_source

MANIFEST_NAME = "manifest.sha256"
IDENTITY_CACHE = "model-identity.json"   # in the cache dir: model dir → (file stats, sha256)


def model_identity(source: str | os.PathLike, cache_dir: Path | None = None) -> tuple[Path, str]:
    """(model dir, model sha256) for `source` without loading it: the manifest is verified.

    A 940 MB model is read once: its sha256 is remembered for this process and, in `cache_dir`,
    across processes, keyed by every file's size, mtime, ctime and inode — any change to a file
    (which also changes its ctime, which no user can set back) verifies the files again.
    """
    model_dir = resolve_source(source)
    files = _manifest_files(model_dir)
    key = json.dumps([str(model_dir), [_stat(model_dir / f) for f in files]])
    if key not in _verified:
        _verified[key] = _cached_identity(cache_dir, key) or verify_manifest(model_dir)
        _remember_identity(cache_dir, key, _verified[key])
    return model_dir, _verified[key]


_verified: dict[str, str] = {}   # this process: identity key → sha256


def _manifest_files(model_dir: Path) -> list[str]:
    manifest = Path(model_dir) / MANIFEST_NAME
    if not manifest.is_file():
        return ["model.pt"]
    return [MANIFEST_NAME] + [line.split(maxsplit=1)[1].strip() for line in manifest.read_text().splitlines()
                              if line.strip()]


def _stat(path: Path) -> list[int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def _cached_identity(cache_dir: Path | None, key: str) -> str | None:
    try:
        return json.loads((Path(cache_dir) / IDENTITY_CACHE).read_text()).get(key) if cache_dir else None
    except (OSError, ValueError):
        return None


def _remember_identity(cache_dir: Path | None, key: str, sha: str) -> None:
    """Add `key → sha` to the cache file (atomically; a lost race only costs a later re-hash)."""
    if not cache_dir or _cached_identity(cache_dir, key) == sha:
        return
    path = Path(cache_dir) / IDENTITY_CACHE
    try:
        known = json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError):
        known = {}
    known = {k: v for k, v in known.items() if json.loads(k)[0] != json.loads(key)[0]} | {key: sha}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(known))
    os.replace(tmp, path)


def write_manifest(model_dir: Path) -> Path:
    """Write `manifest.sha256` (sha256sum format) over every file in the dir."""
    lines = [f"{_sha256(p)}  {p.name}" for p in sorted(Path(model_dir).iterdir())
             if p.is_file() and p.name != MANIFEST_NAME]
    out = Path(model_dir) / MANIFEST_NAME
    out.write_text("\n".join(lines) + "\n")
    return out


def verify_manifest(model_dir: Path) -> str:
    """Check every file listed in the manifest; return the manifest's sha256 (the model id)."""
    manifest = Path(model_dir) / MANIFEST_NAME
    if not manifest.is_file():
        return _sha256(Path(model_dir) / "model.pt")
    for line in manifest.read_text().splitlines():
        if not line.strip():
            continue
        want, name = line.split(maxsplit=1)
        path = Path(model_dir) / name.strip()
        if Path(name.strip()).name != name.strip() or not path.is_file():
            raise ModelIntegrityError(f"model dir '{model_dir}': manifest names '{name}', which is missing")
        if _sha256(path) != want:
            raise ModelIntegrityError(f"model dir '{model_dir}': '{name}' does not match its "
                                      "manifest sha256 (tampered or corrupted); refusing to load")
    return _sha256(manifest)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
