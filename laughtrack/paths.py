"""Expanding what the user typed (files, folders, globs) into media files."""

from __future__ import annotations

import glob
import os
from pathlib import Path

MEDIA_SUFFIXES = {".mp4", ".mkv", ".webm", ".mov", ".avi", ".m4v", ".ts", ".flv", ".wmv", ".mpg", ".mpeg",
                  ".m4a", ".mp3", ".wav", ".flac", ".ogg", ".opus", ".aac", ".wma"}


def expand(inputs: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """(media files, [(input, reason)] for inputs that matched nothing). Order kept, duplicates dropped.

    A file named explicitly is taken whatever its suffix (probe decides); folders are searched
    recursively for media suffixes; anything with * ? [ is a glob. Files come back absolute (not
    resolving symlinks), so what is stored still names them from another folder.
    """
    files: dict[str, None] = {}
    problems = []
    for raw in inputs:
        path = Path(raw).expanduser()
        if any(c in raw for c in "*?["):
            matches = [os.path.abspath(m) for m in sorted(glob.glob(str(path), recursive=True)) if _is_media(Path(m))]
            if not matches:
                problems.append((raw, "no media files match this pattern"))
            files.update(dict.fromkeys(matches))
        elif path.is_dir() and not path.suffix.lower() in MEDIA_SUFFIXES:
            matches = [os.path.abspath(p) for p in sorted(path.rglob("*")) if _is_media(p)]
            if not matches:
                problems.append((raw, "folder holds no media files"))
            files.update(dict.fromkeys(matches))
        else:
            files[os.path.abspath(path)] = None   # probe reports missing, empty, directory, unreadable …
    return list(files), problems


def _is_media(p: Path) -> bool:
    return p.suffix.lower() in MEDIA_SUFFIXES and not p.name.startswith(".") and (p.is_file() or p.is_symlink())
