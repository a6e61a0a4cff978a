"""Write the reports of a results database to a folder: one page per video stream, one index."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from laughtrack.store import Store
from reports import Report, collection_report, video_report


@dataclass(frozen=True)
class WrittenReports:
    """Where the pages went."""

    index: Path
    videos: dict[tuple[str, int], Path]   # (video_id, stream_index) → report.html


def video_dir_name(video_id: str, stream_index: int) -> str:
    return f"{video_id}-a{stream_index}"


def write_reports(store: Store, out: Path, video_ids: list[str] | None = None) -> WrittenReports:
    """Per-video pages for `video_ids` (default: all) and the collection index, with their PNGs."""
    out = Path(out)
    pages = {}
    for target in store.report_targets(video_ids):
        key = (target["video_id"], target["stream_index"])
        folder = out / "videos" / video_dir_name(*key)
        report = video_report(store.video_report_data(target["analysis_id"]), back="../../index.html")
        pages[key] = _write(report, folder, "report.html")
    links = {(t["video_id"], t["stream_index"]): f"videos/{video_dir_name(t['video_id'], t['stream_index'])}/report.html"
             for t in store.report_targets()}
    index = _write(collection_report(store.collection_report_data(), links), out, "index.html",
                   image_dir=out / "index-charts")
    return WrittenReports(index, pages)


def _write(report: Report, folder: Path, name: str, image_dir: Path | None = None) -> Path:
    """Write page and PNGs; the page is replaced atomically so a reader never sees half of it."""
    folder.mkdir(parents=True, exist_ok=True)
    image_dir = image_dir or folder
    image_dir.mkdir(parents=True, exist_ok=True)
    for image, png in report.images.items():
        (image_dir / image).write_bytes(png)
    page = folder / name
    tmp = folder / f".{name}.{os.getpid()}.tmp"
    tmp.write_text(report.html, encoding="utf-8")
    os.replace(tmp, page)
    return page
