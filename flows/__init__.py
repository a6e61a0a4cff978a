"""Prefect flows: straight-line DAGs wiring the tasks; the only place configuration is read."""
