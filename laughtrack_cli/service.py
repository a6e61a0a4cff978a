"""The long-running commands: `watch` (uploads → events or in-process analyses) and `serve` (the
deployments of prefect.yaml from this process)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import yaml

from laughtrack.config import RunConfig
from laughtrack.errors import LaughtrackError
from laughtrack.watch import Watcher, emit_upload
from laughtrack_cli import lifecycle
from laughtrack_cli.output import console

PREFECT_YAML = Path(__file__).resolve().parents[1] / "prefect.yaml"


def watch_inbox(config: RunConfig, run: bool, once: bool, quiet_s: float) -> None:
    """Follow the inbox; hand each complete new upload to Prefect (an event) or analyse it here."""
    from prefect.settings import PREFECT_API_URL
    if not run and not PREFECT_API_URL.value():
        raise LaughtrackError("no Prefect server configured (PREFECT_API_URL is unset), so there is nowhere to "
                              "send upload events; start one (README: Run it as a service) or use --run")
    known = _done_contents(config)
    handle = _analyse_here(config) if run else (lambda p, sha, size: f"emitted {emit_upload(p, sha, size)}")
    watcher = Watcher(Path(config.inbox), handle, known=known, quiet_s=quiet_s,
                      log=lambda line: console.print(line, highlight=False, soft_wrap=True))
    console.print(f"watching {Path(config.inbox).resolve()} ({len(known)} analysed upload(s) known)",
                  highlight=False)
    if once:
        watcher.catch_up()
        watcher.drain()
    else:
        watcher.run()
    if not run:
        from prefect.events.worker import EventsWorker
        EventsWorker.drain_all()


def _done_contents(config: RunConfig) -> set[str]:
    """Content analysed under this configuration: the watcher never hands it over again."""
    from laughtrack.store import open_store
    key = config.engine().config_key(config.params)
    return open_store(config.store).done_contents(key.id)


def _analyse_here(config: RunConfig):
    from flows.analyze import analyze_video

    def handle(path: Path, sha: str, size: int) -> str:
        result = lifecycle.in_thread(analyze_video, path=str(path), config=config)   # a signal stops it at once
        if result.failures:
            return f"failed: {result.failures[0].message}"
        return "analysed" if result.analysed else "already analysed"
    return handle


def deployment_specs(path: Path = PREFECT_YAML) -> list[dict]:
    """The deployments as prefect.yaml declares them (their one definition)."""
    if not path.is_file():
        raise LaughtrackError(f"'{path}' is missing; `laughtrack serve` serves the deployments it declares "
                              "(run it from a checkout installed with `pip install -e .`)")
    return yaml.safe_load(path.read_text()).get("deployments", [])


def serve_deployments(config: RunConfig, crons: dict[str, str | None]) -> None:
    """Serve every deployment of prefect.yaml from this process, with `config` as their parameter."""
    from prefect import serve
    from prefect.settings import PREFECT_API_URL
    if not PREFECT_API_URL.value():
        raise LaughtrackError("`laughtrack serve` needs a Prefect server: run `prefect server start` and set "
                              "PREFECT_API_URL")
    deployments = [to_deployment(spec, config, crons.get(spec.get("name"))) for spec in deployment_specs()]
    # In a worker thread: the runner then leaves SIGTERM to laughtrack (it would exit 0 after waiting),
    # which stops the flow runs it started and exits 130/143 within seconds.
    lifecycle.on_exit(lifecycle.stop_children)
    lifecycle.in_thread(serve, *deployments)


def to_deployment(spec: dict, config: RunConfig, cron: str | None = None):
    """One prefect.yaml deployment as a runner deployment of its flow, parameterised with `config`."""
    from prefect.events import DeploymentEventTrigger
    from prefect.flows import load_flow_from_entrypoint
    flow = load_flow_from_entrypoint(str(PREFECT_YAML.parent / spec.get("entrypoint")))
    crons = [cron] if cron else [s.get("cron") for s in spec.get("schedules", [])]
    triggers = [DeploymentEventTrigger(**{k: t[k] for k in ("expect", "match", "parameters", "enabled") if k in t})
                for t in spec.get("triggers", [])]
    return flow.to_deployment(name=spec.get("name"), description=spec.get("description"), cron=crons or None,
                              triggers=triggers or None, concurrency_limit=spec.get("concurrency_limit"),
                              parameters={**(spec.get("parameters") or {}), "config": asdict(config)})
