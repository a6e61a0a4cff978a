"""Safety: upload names never reach outside the inbox, partial uploads wait, content is deduped,
and remote code is never trusted."""

import os
import re
import threading
import time
from pathlib import Path

from laughtrack import inbox
from laughtrack.watch import Watcher

ROOT = Path(__file__).resolve().parents[1]


def media_file(path: Path, payload: bytes = b"\0" * 1000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(payload)
    return path


def test_only_regular_files_inside_the_inbox_are_taken(tmp_path):
    box, outside = tmp_path / "inbox", tmp_path / "secret"
    media_file(box / "talk.mp4")
    media_file(box / "nested" / "deep talk.mkv", b"other")
    media_file(outside / "private.mp4")
    os.symlink(outside / "private.mp4", box / "escape.mp4")       # points outside
    os.symlink(outside, box / "escape-dir")                        # a folder outside
    os.symlink(box / "loop1.mp4", box / "loop2.mp4")
    os.symlink(box / "loop2.mp4", box / "loop1.mp4")
    for name in ("upload.mp4.part", ".hidden.mp4", "video.mp4.crdownload", "notes.txt", "x.mp4~"):
        media_file(box / name)
    found = sorted(p.relative_to(box).as_posix() for p in inbox.candidates(box))
    assert found == ["nested/deep talk.mkv", "talk.mp4"]
    assert inbox.inside(box, box / ".." / "secret" / "private.mp4") is None
    assert inbox.inside(box, box / "escape.mp4") is None and inbox.inside(box, box / "loop1.mp4") is None


def test_the_watcher_hands_each_complete_new_content_over_once(tmp_path):
    box = tmp_path / "inbox"
    handled, log = [], []
    media_file(box / "a.mp4", b"A" * 5000)
    media_file(box / "b.mp4", b"B" * 5000)
    media_file(box / "a copy.mp4", b"A" * 5000)                   # same bytes, new name
    known = {__import__("hashlib").sha256(b"B" * 5000).hexdigest()}  # already analysed
    w = Watcher(box, lambda p, sha, size: handled.append((p.name, size)) or "ok", known=known,
                quiet_s=0.3, log=log.append)
    w.catch_up()
    w.drain()
    assert len(handled) == 1 and handled[0][1] == 5000 and handled[0][0] in ("a.mp4", "a copy.mp4")
    assert sum("skipped" in line for line in log) == 2


def test_a_growing_upload_is_handed_over_only_when_complete(tmp_path):
    box = tmp_path / "inbox"
    handled = []
    target = media_file(box / "growing.mp4", b"x")
    w = Watcher(box, lambda p, sha, size: handled.append(size) or "ok", quiet_s=0.5, log=lambda _: None)

    def grow():
        with open(target, "ab") as f:
            for _ in range(10):
                f.write(b"y" * 100)
                f.flush()
                time.sleep(0.1)
    writer = threading.Thread(target=grow)
    writer.start()
    w.offer(target)
    writer.join()
    w.drain()
    assert handled == [1001]


def test_a_symlink_out_of_the_inbox_is_never_followed(tmp_path):
    box, outside = tmp_path / "inbox", tmp_path / "elsewhere"
    box.mkdir()
    media_file(outside / "private.mp4")
    os.symlink(outside / "private.mp4", box / "innocent.mp4")
    handled, log = [], []
    w = Watcher(box, lambda *a: handled.append(a) or "ok", quiet_s=0.1, log=log.append)
    w.offer(box / "innocent.mp4")
    w.offer(box / ".." / "elsewhere" / "private.mp4")
    w.drain()
    assert handled == [] and any("not a regular file inside the inbox" in line for line in log)


def test_remote_code_is_never_trusted(sv_torch):
    assert sv_torch.funasr_kwargs.get("trust_remote_code") is False   # funasr builds the torch backend
    offenders = [str(p) for p in ROOT.rglob("*.py") if ".venv" not in p.parts and p.name != "test_safety.py"
                 and re.search(r"trust_remote_code\s*=\s*True", p.read_text(errors="ignore"))]
    assert offenders == []
