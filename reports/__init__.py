"""Filled by the pipeline issues (see ../shared/DESIGN.md)."""
