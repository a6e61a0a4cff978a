"""Where a model's files come from: the bundled fixture, a local dir, or a hub id.

A local dir loads with no network at all. A hub id is looked up in the ModelScope / Hugging Face
caches first; if it is not cached and the hub does not answer within HUB_PROBE_TIMEOUT_S,
resolving fails at once with the commands that fix it, instead of funasr's ~20 s of retries and a
misleading message.
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

from sensevoice_core.errors import ModelUnavailableError

FIXTURE_DIR = Path(__file__).resolve().parent / "fixture"
DEFAULT_HUB_ID = "iic/SenseVoiceSmall"
HUB_PROBE_TIMEOUT_S = 1.5
# Hub id prefix → (funasr hub name, host to probe).
_HUBS = {"FunAudioLLM/": ("hf", "huggingface.co"), "": ("ms", "www.modelscope.cn")}
REQUIRED_FILES = ("config.yaml", "model.pt", "am.mvn", "configuration.json")


def resolve_source(source: str | os.PathLike) -> Path:
    """A model dir for `source`: the fixture, a local dir, or a cached / downloaded hub id."""
    if str(source) == "fixture":
        return FIXTURE_DIR
    path = Path(source).expanduser()
    if path.is_dir():
        missing = [f for f in REQUIRED_FILES if not (path / f).is_file()]
        if missing:
            raise ModelUnavailableError(f"model dir '{path}' lacks {', '.join(missing)}; "
                                        "point --model at a funasr SenseVoiceSmall dir")
        return path.resolve()
    if path.exists() or str(source).startswith((".", "/", "~")) or str(source).count("/") != 1:
        raise ModelUnavailableError(f"model '{source}' is neither a model dir nor a hub id "
                                    "like iic/SenseVoiceSmall")
    return _hub_dir(str(source))


def _hub_dir(hub_id: str) -> Path:
    cached = _cached_hub_dir(hub_id)
    if cached is not None:
        return cached
    hub, host = next(v for k, v in _HUBS.items() if hub_id.startswith(k))
    reason = _probe(host, HUB_PROBE_TIMEOUT_S)
    if reason:
        raise ModelUnavailableError(
            f"cannot download '{hub_id}': {host} is unreachable ({reason}). On a connected machine "
            f"run `modelscope download --model {hub_id} --local_dir DIR` (or `huggingface-cli "
            f"download FunAudioLLM/SenseVoiceSmall --local-dir DIR`), copy DIR here and pass "
            f"--model DIR (or set LAUGHTRACK_MODEL=DIR); --model fixture runs the bundled tiny test "
            f"model (a demo's numbers, not real ones)")
    from funasr.download.download_model_from_hub import download_model
    kwargs = download_model(model=hub_id, hub=hub, disable_update=True)
    return Path(kwargs["model_path"]).resolve()


def _cached_hub_dir(hub_id: str) -> Path | None:
    """A complete copy of hub_id in the ModelScope or Hugging Face cache, without network."""
    home = Path.home() / ".cache"
    for candidate in (home / "modelscope" / "hub" / "models" / hub_id, home / "modelscope" / "hub" / hub_id):
        if all((candidate / f).is_file() for f in REQUIRED_FILES):
            return candidate
    snapshots = home / "huggingface" / "hub" / f"models--{hub_id.replace('/', '--')}" / "snapshots"
    for candidate in sorted(snapshots.glob("*")) if snapshots.is_dir() else ():
        if all((candidate / f).is_file() for f in REQUIRED_FILES):
            return candidate
    return None


def _probe(host: str, timeout: float) -> str | None:
    """None if host:443 accepts a TCP connection within `timeout` s (DNS included), else why not."""
    result: list[str | None] = ["timed out"]

    def attempt() -> None:
        try:
            with socket.create_connection((host, 443), timeout=timeout):
                result[0] = None
        except OSError as exc:
            result[0] = exc.strerror or type(exc).__name__

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(timeout)
    return result[0]
