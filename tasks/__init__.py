"""Thin Prefect tasks over the pure layers: retries, caching, concurrency, progress."""
