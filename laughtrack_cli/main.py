"""`laughtrack` command line: the edge. Reads the configuration once, runs flows, prints, exits.

Prefect, torch and the flows are imported inside the commands that need them, so that `--help`,
`synth` and `query` answer without loading them.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Annotated, Optional

import typer

from laughtrack import faults
from laughtrack.config import RunConfig
from laughtrack.params import AnalysisParams
from laughtrack.errors import LaughtrackError, TimelineError
from laughtrack_cli import lifecycle, output
from laughtrack_cli.output import console
from sensevoice_core import SenseVoiceError
from sensevoice_core.options import LANGUAGE_NAMES

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Find the laughter and applause in videos.",
                  rich_markup_mode=None)   # help texts show their [env …] hints as written

# Prefect, configured for a CLI: no telemetry, a patient ephemeral server, and its console log
# handler quiet (our progress bar and summary say what happened; the Prefect UI keeps the logs).
# Any of these can be overridden from the environment.
PREFECT_DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "CRITICAL",
}
# Gradio, offline: no analytics calls, no hub lookups (gradio_client would ask huggingface.co).
UI_DEFAULTS = {"GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
DB_HELP = ("Results: a DuckDB file, or ducklake:postgres:<conninfo> [env LAUGHTRACK_DB, "
           "else ./laughtrack.duckdb].")
LAKE_HELP = "A DuckLake's data folder, mounted by every machine [env LAUGHTRACK_LAKE_DATA]."
EVENTS_HELP = "Event rules: default, or a set `laughtrack tune --save NAME` made [env LAUGHTRACK_EVENTS]."
MODEL_HELP = "Model dir, hub id or 'fixture' [env LAUGHTRACK_MODEL, else iic/SenseVoiceSmall]."
# The options many commands share, declared once.
Db = Annotated[Optional[str], typer.Option(help=DB_HELP)]
LakeData = Annotated[Optional[str], typer.Option(help=LAKE_HELP)]
Model = Annotated[Optional[str], typer.Option(help=MODEL_HELP)]
Device = Annotated[Optional[str], typer.Option(help="auto | cpu | cuda [env LAUGHTRACK_DEVICE, else auto]")]
Cache = Annotated[Optional[Path], typer.Option(help="Cache dir [env LAUGHTRACK_CACHE, else ~/.cache/laughtrack].")]
Events = Annotated[Optional[str], typer.Option(help=EVENTS_HELP)]


def _fail(message: str, code: int = 1) -> None:
    output.error(message)
    raise typer.Exit(code)


def _config(**given) -> RunConfig:
    """The run configuration: these flags, else $LAUGHTRACK_*, else the defaults (exit 2 if invalid).
    Commands that analyse pass `events` (None: the environment's): their event set is read here."""
    analyses = "events" in given
    try:
        config = RunConfig.from_env(os.environ, **{k: str(v) if isinstance(v, Path) else v for k, v in given.items()})
        if analyses:        # an unknown event set: one line before anything starts (the flow reads it too)
            from laughtrack.store import open_store
            return config.resolved(open_store(config.store))
        return config
    except ValueError as exc:
        _fail(str(exc), code=2)
    except LaughtrackError as exc:
        _fail(str(exc))


def _prefect_env() -> None:
    """Prefect's settings for this command, before Prefect is imported (it reads them once): ours,
    and the server to report to — PREFECT_API_URL, else a local one found running, else a
    temporary one that this command starts and stops; one line on stderr says which."""
    from laughtrack_cli import server
    for key, value in PREFECT_DEFAULTS.items():
        os.environ.setdefault(key, value)
    known = _with_prefect_settings(os.environ)
    api, line = server.choose(known)
    output.err.print(line, style="dim", highlight=False, soft_wrap=True)
    if api is None:
        try:
            temporary = server.temporary(os.environ)
        except LaughtrackError as exc:
            _fail(str(exc))
        lifecycle.on_exit(temporary.stop)
        api = temporary.api
    if api != known.get("PREFECT_API_URL"):
        os.environ["PREFECT_API_URL"] = api


def _with_prefect_settings(env) -> dict:
    """The environment, with the API URL of the Prefect settings already in force when Prefect is
    loaded in this process before the command (a test harness, a notebook)."""
    if env.get("PREFECT_API_URL") or "prefect.settings" not in sys.modules:
        return dict(env)
    from prefect.settings import PREFECT_API_URL
    return dict(env, PREFECT_API_URL=PREFECT_API_URL.value() or "")


@app.command()
def synth(timeline: Path = typer.Argument(..., help="Timeline JSON (see README)."),
          out: Path = typer.Argument(..., help="Media file to write: .mp4 .mkv .webm .mov .wav …")) -> None:
    """Render a timeline to a media file; write OUT.truth.json, OUT.labels.csv and OUT.captions.vtt beside it."""
    from laughtrack.synthetic import synth as synth_mod
    try:
        tl = synth_mod.load_timeline(timeline)
    except TimelineError as exc:
        _fail(str(exc), code=2)
    try:
        truth = synth_mod.render_to(tl, out)
    except LaughtrackError as exc:
        _fail(str(exc))
    labels, captions = (truth.with_name(truth.name.replace(".truth.json", ext)) for ext in (".labels.csv",
                                                                                          ".captions.vtt"))
    console.print(f"wrote {out} ({tl.duration_s:.1f} s), {truth}, {labels} and {captions}",
                  highlight=False, soft_wrap=True)


@app.command()
def analyze(paths: list[str] = typer.Argument(..., help="Media files, folders (searched recursively) or globs."),
            db: Db = None,
            lake_data: LakeData = None,
            model: Model = None,
            device: Device = None,
            language: str = typer.Option("auto", help="auto | zh | en | yue | ja | ko"),
            stream: str = typer.Option("all", help="all | N: which audio stream(s) to analyse."),
            cache: Cache = None,
            events: Events = None,
            ) -> None:
    """Analyse media files: exit 0 all analysed, 1 some failed (the rest done), 2 usage."""
    if language not in LANGUAGE_NAMES:
        _fail(f"--language {language!r}: use one of {', '.join(LANGUAGE_NAMES)}", code=2)
    config = _config(db=db, lake_data=lake_data, model=model, device=device, cache_dir=cache, stream=stream,
                     events=events, params=AnalysisParams(language=language))
    t0 = time.perf_counter()
    result = run_analysis(paths, config)
    output.batch_summary(str(config.store), result, _stats(config, result), time.perf_counter() - t0)
    raise typer.Exit(1 if result.failures or result.problems else 0)


def run_analysis(paths: list[str], config: RunConfig):
    """Resolve the engine (fail fast, before Prefect starts), then run the batch flow with progress.
    Interrupted, it says what was stored, marks the flow run cancelled and exits 130/143."""
    try:
        config.engine()     # device, backend, model: a wrong one is one line, not a server start
    except (SenseVoiceError, ValueError) as exc:
        _fail(str(exc))
    _prefect_env()
    from flows.analyze import analyze_batch
    run_name = f"analyze-{uuid.uuid4().hex[:12]}"
    with output.progress_bars() as bar:
        try:
            return lifecycle.in_thread(analyze_batch.with_options(flow_run_name=run_name), paths=list(paths),
                                       config=config)
        except lifecycle.Interrupted as sig:
            bar.stop()
            _cancel_run(run_name, f"interrupted ({sig.name})")
            lifecycle.exit_now(sig.exit_code, f"interrupted ({sig.name}): {bar.tally()}")
        except (LaughtrackError, SenseVoiceError) as exc:
            bar.stop()
            _fail(str(exc))


def _cancel_run(name: str, why: str, wait_s: float = 3.0) -> None:
    """Give back the device slot and mark the flow run cancelled, on a server that outlives this
    command (best effort, ≤ wait_s)."""
    def cancel() -> None:
        from prefect import get_client
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName
        from prefect.states import Cancelled

        from tasks.device import release_held_slots
        release_held_slots()
        with get_client(sync_client=True) as client:
            for run in client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[name]))):
                client.set_flow_run_state(run.id, Cancelled(message=why), force=True)
    worker = threading.Thread(target=lambda: lifecycle.captured_quietly(cancel), daemon=True)
    worker.start()
    worker.join(wait_s)


def _stats(config: RunConfig, result) -> dict:
    """analysis_id → its engagement row, for the summary table (none when the store cannot say)."""
    from laughtrack.store import open_store
    try:
        rows = open_store(config.store).engagement([a.analysis_id for a in result.analysed + result.skipped])
    except LaughtrackError:
        return {}
    return {r.analysis_id: r for r in rows}


@app.command()
def report(out: Path = typer.Option(..., "--out", help="Folder for index.html and videos/<id>-a<stream>/report.html."),
           db: Db = None,
           lake_data: LakeData = None,
           video: list[str] = typer.Option(None, "--video", help="Video id(s) to report on (repeatable)."),
           all_: bool = typer.Option(False, "--all", help="Report on every analysed video (the default)."),
           ) -> None:
    """Write per-video HTML reports and the collection report (from the results alone)."""
    from reports.site import write_reports
    from laughtrack.store import open_store
    if video and all_:
        _fail("give --video ID… or --all, not both", code=2)
    t0 = time.perf_counter()
    try:
        written = write_reports(open_store(_config(db=db, lake_data=lake_data).store), out,
                                list(video) if video else None, workers=os.cpu_count() or 1)
    except LaughtrackError as exc:
        _fail(str(exc))
    for (vid, stream_index), page in written.videos.items():
        console.print(f"video {vid} stream {stream_index}: {page}", highlight=False, soft_wrap=True)
    console.print(f"collection: {written.index}\n{len(written.videos)} video report(s) in "
                  f"{time.perf_counter() - t0:.1f} s", highlight=False, soft_wrap=True)


@app.command()
def query(sql: str = typer.Argument(None, help="One read-only SQL statement, or - to read it from stdin."),
          db: Db = None,
          lake_data: LakeData = None,
          format: str = typer.Option("table", "--format", "-f", help="table | csv | json"),
          list_: bool = typer.Option(False, "--list", help="List the named queries (views) and tables."),
          timeout_s: float = typer.Option(None, help="Stop the query after this many seconds "
                                                     "[env LAUGHTRACK_QUERY_TIMEOUT_S, else 60]."),
          memory: str = typer.Option(None, help="Memory the query may use, e.g. 512MB "
                                                "[env LAUGHTRACK_QUERY_MEMORY, else 1GB]."),
          threads: int = typer.Option(None, help="Threads the query may use [env LAUGHTRACK_QUERY_THREADS, else 2]."),
          ) -> None:
    """Read-only SQL over the results: exit 0, or 1 on an SQL error, any write, more than one
    statement, or a query past its time or memory limit."""
    from laughtrack.store import open_store
    if format not in ("table", "csv", "json"):
        _fail(f"--format {format!r}: use table, csv or json", code=2)
    if sql == "-":
        sql = sys.stdin.read()
    if not (sql or "").strip() and not list_:
        _fail("give an SQL statement, e.g. laughtrack query \"SELECT * FROM engagement\", - to read it from "
              "stdin, or --list", code=2)
    config = _config(db=db, lake_data=lake_data, query_timeout_s=timeout_s, query_memory=memory,
                     query_threads=threads)
    store = open_store(config.store)
    lifecycle.nothing_to_tear_down()
    try:   # in a worker thread: Ctrl-C ends the command at once, even inside DuckDB
        names, rows = lifecycle.in_thread(store.relations) if list_ else lifecycle.in_thread(store.query, sql)
    except LaughtrackError as exc:
        _fail(str(exc))
    output.rows(names, rows, format)


@app.command()
def demo(out: Path = typer.Option(Path("demo-out"), help="Folder for the demo video, database and cache."),
         model: str = typer.Option("fixture", help="Model dir, hub id, or 'fixture'."),
         device: Device = None) -> None:
    """Offline demo: synthesize a 3-minute video, analyse it through the Prefect flow, compare to truth."""
    from laughtrack.store import open_store
    from laughtrack.synthetic import demo as demo_mod, synth as synth_mod
    from reports.site import page_path
    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    video = out / "demo.mp4"
    truth_path = synth_mod.render_to(demo_mod.demo_timeline(), video)
    config = _config(db=out / "laughtrack.duckdb", model=model, device=device, cache_dir=out / "cache",
                     report_dir=out / "report")
    result = run_analysis([str(video)], config)
    if result.failures:
        _fail(result.failures[0].message)
    first = (result.analysed + result.skipped)[0]
    truth = synth_mod.read_truth(truth_path)
    store = open_store(config.store)
    got = store.minute_table([first.analysis_id])
    output.minutes_vs_truth(truth, got, video.name)
    console.print(demo_mod.score_line(truth, got), highlight=False)
    page = page_path(Path(result.report).parent, store.target(first.video_id, first.stream_index))
    console.print(f"video: {video}\ntruth: {truth_path}\ndatabase: {config.db}\n"
                  f"report: {page}\n"
                  f"try:   laughtrack query --db {config.db} \"SELECT * FROM top_moments\"\n"
                  f"demo wall time {time.perf_counter() - t0:.1f} s", soft_wrap=True, highlight=False)


@app.command()
def watch(inbox: Path = typer.Argument(..., help="Folder uploads land in."),
          db: Db = None,
          lake_data: LakeData = None,
          model: Model = None,
          run: bool = typer.Option(False, "--run", help="Analyse in this process instead of emitting events."),
          once: bool = typer.Option(False, "--once", help="Handle what is in the inbox now, then exit."),
          quiet_s: float = typer.Option(2.0, help="Seconds a file's size must stay unchanged to count as complete."),
          ) -> None:
    """Watch an inbox: each complete new upload becomes a laughtrack.video.uploaded event (or, with
    --run, an analysis in this process)."""
    from laughtrack_cli.service import watch_inbox
    if not inbox.is_dir():
        _fail(f"inbox '{inbox}' is not a folder", code=2)
    config = _config(db=db, lake_data=lake_data, model=model, inbox=inbox, events=None)
    _prefect_env()
    try:
        watch_inbox(config, run=run, once=once, quiet_s=quiet_s)
    except KeyboardInterrupt:       # watchfiles turns our signal into its own; click would exit 1 and wait
        raise lifecycle.received() from None
    except (LaughtrackError, SenseVoiceError) as exc:
        _fail(str(exc), code=2)


@app.command()
def serve(inbox: Path = typer.Option(None, help="Inbox folder [env LAUGHTRACK_INBOX, else ./inbox]."),
          db: Db = None,
          lake_data: LakeData = None,
          model: Model = None,
          inbox_cron: str = typer.Option(None, help="When to scan the inbox [prefect.yaml: */10 * * * *]."),
          report_cron: str = typer.Option(None, help="When to rebuild the reports [prefect.yaml: 0 3 * * *]."),
          ) -> None:
    """Serve the deployments of prefect.yaml (analyze-inbox, analyze-upload, engagement-report) from
    this process, for users without a work pool. Needs a Prefect server (PREFECT_API_URL)."""
    from laughtrack_cli.service import serve_deployments
    config = _config(inbox=inbox, db=db, lake_data=lake_data, model=model).absolute()
    _prefect_env()
    try:
        serve_deployments(config, {"analyze-inbox": inbox_cron, "engagement-report": report_cron})
    except LaughtrackError as exc:
        _fail(str(exc), code=2)


@app.command()
def ui(db: Db = None, lake_data: LakeData = None,
       model: Model = None,
       device: Device = None,
       cache: Cache = None,
       host: str = typer.Option("127.0.0.1", help="Address to bind; anything but loopback needs --auth."),
       port: int = typer.Option(6006, help="Port of the page."),
       auth: str = typer.Option(None, help="user:password the page asks for."),
       max_upload_mb: int = typer.Option(2048, help="Largest upload the page takes, in MB."),
       events: Events = None) -> None:
    """Serve the web page: analyse an upload or a recording, browse the library, query the results."""
    config = _config(db=db, lake_data=lake_data, model=model, device=device, cache_dir=cache,
                     events=events).absolute()
    user, sep, password = (auth or "").partition(":")
    if auth and not (user and sep and password):
        _fail("--auth wants user:password", code=2)
    if host not in ("127.0.0.1", "localhost", "::1") and not auth:
        _fail(f"--host {host} serves the page to the network: give --auth user:password", code=2)
    try:
        config.engine()
    except (SenseVoiceError, ValueError) as exc:
        _fail(str(exc))
    _prefect_env()
    for key, value in UI_DEFAULTS.items():
        os.environ.setdefault(key, value)
    from laughtrack_cli import ui as page
    console.print(f"laughtrack ui: http://{host}:{port}/ ({config.store})", highlight=False, soft_wrap=True)
    page.serve(config, host, port, (user, password) if auth else None, max_upload_mb)


COLLAR_HELP = "Event-based onset collar in seconds (2 s at least for caption labels)."


@app.command("eval")
def eval_(labels: list[Path] = typer.Argument(..., help="LABELS.csv (path,label,start_s,end_s), or Audacity .txt, "
                                                          "Praat .TextGrid or caption (.vtt, .srt) files beside "
                                                          "their media."),
          db: Db = None, lake_data: LakeData = None,
          model: Model = None,
          events: Events = None,
          collar: float = typer.Option(0.5, help=COLLAR_HELP),
          format: str = typer.Option("table", "--format", "-f", help="table | json")) -> None:
    """Score laughtrack against labelled media: per label P/R/F1 (segment 1 s, event onset), onset/offset
    and per-minute error. Analyses what is not analysed yet."""
    from laughtrack_cli import labelled
    if format not in ("table", "json"):
        _fail(f"--format {format!r}: use table or json", code=2)
    config = _config(db=db, lake_data=lake_data, model=model, events=events)
    # Nothing asked of the model or the rules: score what is stored, analyse only what is not.
    stored_first = not (model or events or os.environ.get("LAUGHTRACK_MODEL") or os.environ.get("LAUGHTRACK_EVENTS"))
    found = _labelled_flow("evaluate", labels, config, collar, needs_model=not stored_first, stored_first=stored_first)
    if format == "json":
        print(labelled.scores_json(found.scores))
        return
    output.print_wide(labelled.score_table(found.scores, f"laughtrack eval: {len(found.labels.files)} file(s), events "
                                                         f"'{config.params.events.name}', collar {found.collar_s:g} s"))
    if found.labels.ignored:
        console.print("labels left out (not laughter, applause, speech or music): "
                      + ", ".join(f"{k!r} × {v}" for k, v in found.labels.ignored.most_common()), highlight=False)


def _labelled_flow(which: str, labels: list[Path], config: RunConfig, collar: float, needs_model: bool = True,
                   **extra):
    """Run flows/evaluate.py's `evaluate` or `tune_rules` (with progress, interruptible); one line on a fault."""
    from laughtrack.labelled.evaluation import collar_for
    from laughtrack.labelled.labels import read
    try:
        label_set = read(labels)    # a bad label file: one line, before any server or model starts
    except LaughtrackError as exc:
        _fail(str(exc))
    if label_set.coarse:        # on stderr: stdout may be the JSON scores
        output.err.print(f"caption labels ({len(label_set.captions)} file(s)): their sound cues are the labels, "
                      f"{label_set.speech_cues} speech cue(s) left out. A cue's times are the captioner's: "
                      f"the event collar is {collar_for(True, collar):g} s, and the 1 s segment scores are "
                      "the ones to read first.", highlight=False, soft_wrap=True)
    if needs_model:
        try:
            config.engine()
        except (SenseVoiceError, ValueError) as exc:
            _fail(str(exc))
    _prefect_env()
    from flows import evaluate
    with output.progress_bars() as bar:
        try:
            return lifecycle.in_thread(getattr(evaluate, which), label_files=[str(p) for p in labels], config=config,
                                       collar_s=collar, **extra)
        except lifecycle.Interrupted as sig:
            bar.stop()
            lifecycle.exit_now(sig.exit_code, f"interrupted ({sig.name}): {bar.tally()}")
        except (LaughtrackError, SenseVoiceError) as exc:
            bar.stop()
            _fail(str(exc))


@app.command()
def tune(labels: list[Path] = typer.Argument(..., help="Labelled media, as for `laughtrack eval`."),
         save: str = typer.Option(..., "--save", help="Name to save the tuned event rules under (--events NAME)."),
         db: Db = None, lake_data: LakeData = None,
         model: Model = None,
         events: str = typer.Option(None, help="Event rules to start from [env LAUGHTRACK_EVENTS, else default]."),
         collar: float = typer.Option(0.5, help=COLLAR_HELP)) -> None:
    """Choose per-label event rules (on/off, minimum duration, gap merge) that maximise event F1 on
    labelled media; print before/after and save them as a named set."""
    from laughtrack.events import EventOptions
    from laughtrack_cli import labelled
    try:
        EventOptions(name=save).validate()
    except ValueError as exc:
        _fail(f"--save: {exc}", code=2)
    if save == "default":
        _fail("--save default: the built-in set keeps its name; choose another", code=2)
    config = _config(db=db, lake_data=lake_data, model=model, events=events)
    tuned = _labelled_flow("tune_rules", labels, config, collar, name=save)
    labelled.print_tuned(tuned, config.params.events.name)
    console.print(f"saved as '{save}' in {config.store}: use it with --events {save} "
                  f"(or LAUGHTRACK_EVENTS={save} for deployments)", highlight=False, soft_wrap=True)


@app.command()
def export(video: str = typer.Option(..., "--video", help="Video id, a unique prefix of it, or the video's path."),
           stream: int = typer.Option(0, help="Audio stream."),
           format: str = typer.Option("vtt", "--format", "-f", help="vtt | srt | audacity | csv"),
           labels: str = typer.Option("Laughter,Applause", help="Event labels to export, comma-separated."),
           out: Path = typer.Option(None, help="File to write [stdout]."),
           captions: bool = typer.Option(False, "--captions", help="Captions for viewers (vtt or srt): the speech "
                                         "and the sounds ([LAUGHTER], [APPLAUSE], …) together."),
           db: Db = None, lake_data: LakeData = None) -> None:
    """A video's laughter and applause moments as cues, chapters or labels for an editor; with
    --captions, its rich transcript as captions for viewers."""
    from laughtrack import captions as captions_mod
    from laughtrack.labelled import export as export_mod
    from laughtrack.store import open_store
    if format not in export_mod.FORMATS:
        _fail(f"--format {format!r}: use one of {', '.join(export_mod.FORMATS)}", code=2)
    if captions and format not in captions_mod.FORMATS:
        _fail(f"--captions --format {format!r}: captions are {' or '.join(captions_mod.FORMATS)}", code=2)
    try:
        wanted = export_mod.wanted_labels(labels)
    except ValueError as exc:
        _fail(str(exc), code=2)
    store = open_store(_config(db=db, lake_data=lake_data).store)
    try:
        target = store.target(export_mod.find_video(store, video), stream)
    except LaughtrackError as exc:
        _fail(str(exc))
    if captions:
        from laughtrack import transcript
        cues = captions_mod.caption_cues(transcript.of(store, target.analysis_id))
        text, what = captions_mod.render(cues, format), f"{len(cues)} caption(s)"
    else:
        events = export_mod.moments(store, target, wanted)
        text, what = export_mod.render(events, format), f"{len(events)} moment(s)"
    if out:
        out.write_text(text, encoding="utf-8")
        console.print(f"{what} → {out}", highlight=False, soft_wrap=True)
    else:
        typer.echo(text, nl=False)


db_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="Create, migrate and maintain the results database.")
app.add_typer(db_app, name="db")


@db_app.command("migrate")
def db_migrate(db: Db = None, lake_data: LakeData = None,
               cache: Cache = None) -> None:
    """Create the results database (a DuckLake's catalog and data folder) or bring its schema up to date."""
    from laughtrack.store import open_store, schema
    config = _config(db=db, lake_data=lake_data, cache_dir=cache)
    try:
        found = open_store(config.store).migrate()
    except LaughtrackError as exc:
        _fail(str(exc))
    done = "created" if found == 0 else "already current" if found == schema.SCHEMA_VERSION else f"migrated from v{found}"
    console.print(f"{config.store}: schema v{schema.SCHEMA_VERSION}, {done}", highlight=False, soft_wrap=True)


@db_app.command("maintain")
def db_maintain(db: Db = None, lake_data: LakeData = None,
                orphan_age_s: float = typer.Option(3600.0, help="Delete unreferenced files older than this; longer "
                                                                 "than any write transaction."),
                snapshot_age_s: float = typer.Option(7 * 86400.0, help="Expire snapshots older than this.")) -> None:
    """Merge small files, expire old snapshots, delete orphaned files (the nightly deployment runs this)."""
    from laughtrack.store import open_store
    config = _config(db=db, lake_data=lake_data)
    try:
        done = open_store(config.store).maintain(orphan_age_s=orphan_age_s, snapshot_age_s=snapshot_age_s)
    except LaughtrackError as exc:
        _fail(str(exc))
    console.print(f"{config.store}: " + ", ".join(f"{k} {v}" for k, v in done.items()), highlight=False,
                  soft_wrap=True)


cache_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="The cache of extracted audio and the page's uploads.")
app.add_typer(cache_app, name="cache")


@cache_app.command("prune")
def cache_prune(cache: Cache = None,
                older_than: str = typer.Option(None, help="Remove what was not used for this long: 12h, 7d, 2w …"),
                max_size: str = typer.Option(None, help="Then remove the least recently used until this much "
                                                        "is left: 500MB, 20GB …"),
                dry_run: bool = typer.Option(False, "--dry-run", help="Say what would go, remove nothing.")) -> None:
    """Remove extracted audio and the page's upload copies (both made again when needed), by age
    and/or down to a size; the model's int8 export stays."""
    from laughtrack import cache as cache_mod
    if not older_than and not max_size:
        _fail("give --older-than AGE and/or --max-size SIZE (e.g. --older-than 7d --max-size 20GB)", code=2)
    try:
        age = cache_mod.parse_age(older_than) if older_than else None
        most = cache_mod.parse_size(max_size) if max_size else None
    except ValueError as exc:
        _fail(str(exc), code=2)
    config = _config(cache_dir=cache)
    removed, kept = cache_mod.prune(Path(config.cache_dir), age, most, dry_run)
    freed = sum(e.size for e in removed)
    console.print(f"{config.cache_dir}: {'would remove' if dry_run else 'removed'} {len(removed)} item(s), "
                  f"{freed / 1e6:.1f} MB; {kept / 1e6:.1f} MB kept", highlight=False, soft_wrap=True)


server_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="A local Prefect server that every laughtrack command reuses.")
app.add_typer(server_app, name="server")


@server_app.command("start")
def server_start() -> None:
    """Start a Prefect server in the background (UI included) at PREFECT_SERVER_API_HOST:PORT
    [127.0.0.1:4200]; laughtrack commands then report to it instead of starting a temporary one."""
    from laughtrack_cli import server
    os.environ.update({k: v for k, v in PREFECT_DEFAULTS.items() if k not in os.environ})
    try:
        local, pid, took = server.start(os.environ)
    except LaughtrackError as exc:
        _fail(str(exc))
    if pid is None:
        console.print(f"a Prefect server is already running at {local.ui}", highlight=False, soft_wrap=True)
        return
    console.print(f"Prefect server running at {local.ui} (UI and API; pid {pid}, up in {took:.1f} s, "
                  f"log {local.home / server.LOG_FILE}); `laughtrack server stop` stops it",
                  highlight=False, soft_wrap=True)


@server_app.command("stop")
def server_stop() -> None:
    """Stop the Prefect server `laughtrack server start` started."""
    from laughtrack_cli import server
    try:
        local, pid = server.stop(os.environ)
    except LaughtrackError as exc:
        _fail(str(exc))
    console.print(f"stopped the Prefect server at {local.ui} (pid {pid})", highlight=False, soft_wrap=True)


@server_app.command("status")
def server_status() -> None:
    """Whether a local Prefect server answers: exit 0 running, 1 not."""
    from laughtrack_cli import server
    local, up, pid = server.status(os.environ)
    owner = f"pid {pid}, started by laughtrack" if pid else "not started by laughtrack"
    console.print(f"Prefect server at {local.ui}: " + (f"running ({owner})" if up else "not running"),
                  highlight=False, soft_wrap=True)
    raise typer.Exit(0 if up else 1)


def main() -> None:
    """The `laughtrack` command: Ctrl-C or SIGTERM anywhere ends it within seconds, with 130/143 and
    one line, and stops the temporary Prefect server it started (lifecycle.py)."""
    lifecycle.catch_signals()
    faults.arm(*(os.environ.get(name) for name in faults.FAULT_VARS))     # crash tests only (laughtrack/faults.py)
    try:
        app()
    except SystemExit as done:       # how a typer app ends, on success too
        lifecycle.finished(done.code if isinstance(done.code, int) else 1 if done.code else 0)
        raise
    except lifecycle.Interrupted as sig:
        lifecycle.exit_now(sig.exit_code, f"interrupted ({sig.name})")
    except (LaughtrackError, OSError) as exc:     # a user-side fault that no command turned into its line
        output.error(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
