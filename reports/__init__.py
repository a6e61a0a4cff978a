"""Engagement reports: report data in, HTML pages and PNG charts out (no file or database I/O)."""

from reports.html import Report, collection_report, video_report

__all__ = ["Report", "collection_report", "video_report"]
