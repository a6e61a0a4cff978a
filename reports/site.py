"""Write the reports of a results database to a folder: one page per video stream, one index.

Where a page lives is decided here once (`page_path`): the CLI, the flow, the demo and the web page
all ask this module.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from laughtrack import transcript
from laughtrack.errors import disk_fault
from laughtrack.store import Store
from laughtrack.store.records import ReportTarget, VideoReport
from laughtrack.transcript import RichTranscript

PAGES_PER_WORKER = 8      # below this many pages a second process costs more than it saves
PAGE = "report.html"
INDEX = "index.html"


@dataclass(frozen=True)
class WrittenReports:
    """Where the pages went, and how many of the asked-for pages were left for `laughtrack report`."""

    index: Path
    videos: dict[tuple[str, int], Path]   # (video_id, stream_index) → report.html
    left: int = 0


def page_href(target: ReportTarget) -> str:
    """A video stream's page, relative to the site's folder (what the index links to)."""
    return f"videos/{target.video_id}-a{target.stream_index}/{PAGE}"


def page_path(root: Path | str, target: ReportTarget) -> Path:
    """Where a video stream's page is in a site written to `root`."""
    return Path(root) / page_href(target)


def write_reports(store: Store, out: Path, video_ids: list[str] | None = None, most_pages: int | None = None,
                  workers: int = 1) -> WrittenReports:
    """Per-video pages for `video_ids` (default: all; at most `most_pages`, the most engaging first)
    and the collection index, with their PNGs; pages are drawn in up to `workers` processes. The
    index links every page that exists in `out`."""
    out = Path(out)
    try:
        return _write_reports(store, out, video_ids, most_pages, workers)
    except OSError as exc:
        raise disk_fault(exc, str(out), "the reports") or exc from None


def _write_reports(store: Store, out: Path, video_ids: list[str] | None, most_pages: int | None,
                   workers: int) -> WrittenReports:
    every = store.report_targets()
    targets = every if video_ids is None else store.report_targets(video_ids)
    chosen = _most_engaging(store, targets, most_pages)
    written = _render_pages(store, chosen, out, workers)
    pages = {(t.video_id, t.stream_index): page for t, page in zip(chosen, written)}
    links = {(t.video_id, t.stream_index): page_href(t) for t in every if page_path(out, t).is_file()}
    from reports import collection_report
    index = _write(collection_report(store.collection_report(), links), out, INDEX, image_dir=out / "index-charts")
    return WrittenReports(index, pages, len(targets) - len(chosen))


def _most_engaging(store: Store, targets: list[ReportTarget], most: int | None) -> list[ReportTarget]:
    if most is None or len(targets) <= most:
        return targets
    scores = {r.analysis_id: r.engagement_score or 0.0 for r in store.engagement([t.analysis_id for t in targets])}
    return sorted(targets, key=lambda t: -scores.get(t.analysis_id, 0.0))[:most]


def _render_pages(store: Store, targets: list[ReportTarget], out: Path, workers: int) -> list[Path]:
    """Each target's page in its folder; one at a time (its data read just before), or in worker
    processes when there are enough pages to pay for starting them."""
    folders = [page_path(out, t).parent for t in targets]
    workers = max(1, min(workers, len(targets) // PAGES_PER_WORKER))
    if workers == 1:
        return [write_video_page(store.video_report(t.analysis_id), transcript.of(store, t.analysis_id), f)
                for t, f in zip(targets, folders)]
    # spawn: the caller may be a threaded Prefect worker, where fork can deadlock
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(write_video_page, [store.video_report(t.analysis_id) for t in targets],
                             [transcript.of(store, t.analysis_id) for t in targets], folders, chunksize=4))


def write_video_page(data: VideoReport, rich: RichTranscript, folder: Path) -> Path:
    """One video stream's page, its PNGs and its captions in `folder` (a worker process may run this)."""
    from reports import video_report
    return _write(video_report(data, rich, back=f"../../{INDEX}"), folder, PAGE)


def _write(report, folder: Path, name: str, image_dir: Path | None = None) -> Path:
    """Write page and PNGs, each replaced atomically, so a reader never sees half of one and a
    failed write (a full disk) leaves no partial file."""
    folder.mkdir(parents=True, exist_ok=True)
    image_dir = image_dir or folder
    image_dir.mkdir(parents=True, exist_ok=True)
    for image, png in report.images.items():
        _replace(image_dir / image, png)
    for other, data in report.files.items():
        _replace(folder / other, data)
    page = folder / name
    _replace(page, report.html.encode("utf-8"))
    return page


def _replace(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
