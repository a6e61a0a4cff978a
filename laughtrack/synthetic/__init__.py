"""Synthetic media with a known truth: timelines rendered to media, per-minute truth, the demo."""
