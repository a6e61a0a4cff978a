"""`laughtrack` command line. Reads settings, formats output, picks exit codes; work lives below."""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from laughtrack.errors import LaughtrackError, TimelineError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Find the laughter and applause in videos.")
console = Console()
err = Console(stderr=True)

LANGUAGES = ("auto", "zh", "en", "yue", "ja", "ko")
STAGES = ("probe", "extract", "scan", "transcribe", "store")

# Prefect, configured for a CLI: no telemetry, a patient ephemeral server, and its console log
# handler quiet (our progress bar and summary say what happened; the Prefect UI keeps the logs).
# Any of these can be overridden from the environment.
PREFECT_DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "CRITICAL",
}


def _fail(message: str, code: int = 1) -> None:
    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True, markup=True)
    raise typer.Exit(code)


def _settings_db(db: Path | None) -> Path:
    from laughtrack.settings import Settings
    return Path(Settings.resolve(db=str(db) if db else None).db)


def _prefect_env() -> None:
    for key, value in PREFECT_DEFAULTS.items():
        os.environ.setdefault(key, value)


@app.command()
def synth(timeline: Path = typer.Argument(..., help="Timeline JSON (see README)."),
          out: Path = typer.Argument(..., help="Media file to write: .mp4 .mkv .webm .mov .wav …")) -> None:
    """Render a timeline to a media file and write OUT.truth.json beside it."""
    from laughtrack import synth as synth_mod
    try:
        tl = synth_mod.load_timeline(timeline)
    except TimelineError as exc:
        _fail(str(exc), code=2)
    try:
        truth = render_media(tl, out)
    except LaughtrackError as exc:
        _fail(str(exc))
    console.print(f"wrote {out} ({tl.duration_s:.1f} s) and {truth}")


def render_media(timeline, out: Path) -> Path:
    """Render `timeline` to `out` and its per-minute truth to `out.truth.json`; return the truth path."""
    from laughtrack import media, synth as synth_mod
    audio, _ = synth_mod.render(timeline)
    media.write_media(audio, out)
    truth = out.with_name(out.name + ".truth.json") if out.suffix == "" else out.with_suffix(".truth.json")
    truth.write_text(json.dumps(synth_mod.per_minute_truth(timeline), indent=1) + "\n")
    return truth


@app.command()
def analyze(paths: list[str] = typer.Argument(..., help="Media files, folders (searched recursively) or globs."),
            db: Path = typer.Option(None, help="DuckDB file [env LAUGHTRACK_DB, else ./laughtrack.duckdb]."),
            model: str = typer.Option(None, help="Model dir, hub id or 'fixture' [env LAUGHTRACK_MODEL, "
                                                 "else iic/SenseVoiceSmall]."),
            device: str = typer.Option("auto", help="auto | cpu | cuda"),
            language: str = typer.Option("auto", help="auto | zh | en | yue | ja | ko"),
            stream: str = typer.Option("all", help="all | N: which audio stream(s) to analyse."),
            cache: Path = typer.Option(None, help="PCM cache dir [env LAUGHTRACK_CACHE, else ~/.cache/laughtrack]."),
            ) -> None:
    """Analyse media files into DuckDB: exit 0 all analysed, 1 some failed (the rest done), 2 usage."""
    from laughtrack.analysis import AnalysisParams
    if language not in LANGUAGES:
        _fail(f"--language {language!r}: use one of {', '.join(LANGUAGES)}", code=2)
    if stream != "all" and not stream.isdigit():
        _fail(f"--stream {stream!r}: use 'all' or a stream number (0 is the first audio stream)", code=2)
    if device not in ("auto", "cpu") and not device.startswith("cuda"):
        _fail(f"--device {device!r}: use auto, cpu or cuda", code=2)
    from laughtrack.settings import Settings
    settings = Settings.resolve(db=str(db) if db else None, model=model, cache_dir=str(cache) if cache else None)
    db = Path(settings.db)
    t0 = time.perf_counter()
    result = run_analysis(paths, db, settings.model, device, stream, AnalysisParams(language=language),
                          settings.cache_dir)
    _print_summary(db, result, time.perf_counter() - t0)
    raise typer.Exit(1 if result.failures else 0)


def run_analysis(paths: list[str], db: Path, model: str, device: str, stream: str, params, cache_dir,
                 report_dir: str | None = None):
    """Run the analyze-batch flow with a progress bar per file; exit 1 on a model/database error."""
    _prefect_env()
    from laughtrack import progress as progress_mod
    from laughtrack.store import StoreError
    from sensevoice_core import SenseVoiceError
    from sensevoice_core.model import resolve_source
    try:
        resolve_source(model)   # fail fast, before the Prefect server starts
    except SenseVoiceError as exc:
        _fail(str(exc))
    from flows.analyze import analyze_batch

    columns = (TextColumn("{task.description}", markup=False), BarColumn(bar_width=20),
               TextColumn("{task.fields[stage]}"), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=False) as bar:
        rows: dict[str, int] = {}

        def on_stage(path: str, stage: str) -> None:
            if path not in rows:
                rows[path] = bar.add_task(_short(path), total=len(STAGES), stage=stage)
            done = STAGES.index(stage) + 1 if stage in STAGES else len(STAGES)
            bar.update(rows[path], completed=done, stage=stage)

        progress_mod.set_sink(on_stage)
        try:
            return analyze_batch(paths=list(paths), db=str(db), model=model, device=device, stream=stream,
                                 params=params, cache_dir=cache_dir, report_dir=report_dir)
        except (LaughtrackError, SenseVoiceError, StoreError) as exc:
            bar.stop()
            _fail(str(exc))
        finally:
            progress_mod.set_sink(None)


def _short(path: str, width: int = 40) -> str:
    return path if len(path) <= width else "…" + path[-(width - 1):]


def _print_summary(db: Path, result, wall_s: float) -> None:
    from laughtrack import store
    ids = [a["analysis_id"] for a in result.analysed + result.skipped]
    stats = {}
    if ids:
        names, rows = store.query(db, "SELECT analysis_id, duration_s, laughter_s, applause_s, laughs, "
                                      "engagement_score FROM engagement WHERE analysis_id IN (SELECT unnest(?))", [ids])
        stats = {r[0]: r[1:] for r in rows}
    table = Table(title=f"laughtrack analyze → {db}")
    table.add_column("file", overflow="fold", ratio=1)
    table.add_column("stream", justify="right")
    table.add_column("status", no_wrap=True)
    for col in ("min", "laugh s", "clap s", "laughs", "score"):
        table.add_column(col, justify="right", no_wrap=True)
    for status, items in (("analysed", result.analysed), ("already analysed", result.skipped)):
        for a in items:
            s = stats.get(a["analysis_id"])
            cells = (f"{s[0] / 60:.1f}", f"{s[1]:.1f}", f"{s[2]:.1f}", str(s[3]), f"{s[4]:.1f}") if s else ("-",) * 5
            table.add_row(a["path"], str(a["stream_index"]), status, *cells)
    for f in result.failures:
        table.add_row(f["path"], "-" if f["stream_index"] is None else str(f["stream_index"]),
                      f"[red]failed ({f['stage']})[/red]", *("-",) * 5)
    console.print(table)
    audio_s = sum(stats[a["analysis_id"]][0] for a in result.analysed if a["analysis_id"] in stats)
    console.print(f"{len(result.analysed)} analysed, {len(result.skipped)} already analysed, "
                  f"{len(result.failures)} failed; {audio_s / 60:.1f} min of new audio in {wall_s:.1f} s"
                  + (f" ({audio_s / wall_s:.0f}x realtime, Prefect start-up included)" if audio_s else ""),
                  highlight=False)
    if result.report:
        console.print(f"report: {result.report}", highlight=False, soft_wrap=True)
    for f in result.failures:
        err.print(f"[red]error:[/red] {f['message']}", highlight=False, soft_wrap=True)


@app.command()
def report(out: Path = typer.Option(..., "--out", help="Folder for index.html and videos/<id>-a<stream>/report.html."),
           db: Path = typer.Option(None, help="DuckDB file [env LAUGHTRACK_DB, else ./laughtrack.duckdb]."),
           video: list[str] = typer.Option(None, "--video", help="Video id(s) to report on (repeatable)."),
           all_: bool = typer.Option(False, "--all", help="Report on every analysed video (the default)."),
           ) -> None:
    """Write per-video HTML reports and the collection report (from DuckDB alone)."""
    from laughtrack.reporting import write_reports
    if video and all_:
        _fail("give --video ID… or --all, not both", code=2)
    t0 = time.perf_counter()
    try:
        written = write_reports(_settings_db(db), out, list(video) if video else None)
    except LaughtrackError as exc:
        _fail(str(exc))
    for (vid, stream_index), page in written.videos.items():
        console.print(f"video {vid} stream {stream_index}: {page}", highlight=False, soft_wrap=True)
    console.print(f"collection: {written.index}\n{len(written.videos)} video report(s) in "
                  f"{time.perf_counter() - t0:.1f} s", highlight=False, soft_wrap=True)


@app.command()
def query(sql: str = typer.Argument(None, help="One read-only SQL statement."),
          db: Path = typer.Option(None, help="DuckDB file [env LAUGHTRACK_DB, else ./laughtrack.duckdb]."),
          format: str = typer.Option("table", "--format", "-f", help="table | csv | json"),
          list_: bool = typer.Option(False, "--list", help="List the named queries (views) and tables."),
          ) -> None:
    """Read-only SQL over the results: exit 0, or 1 on an SQL error or any write attempt."""
    from laughtrack import store
    if format not in ("table", "csv", "json"):
        _fail(f"--format {format!r}: use table, csv or json", code=2)
    if list_:
        sql = ("SELECT table_name AS name, lower(table_type) AS kind FROM information_schema.tables "
               "WHERE table_schema = 'main' ORDER BY kind DESC, name")
    if not sql:
        _fail("give an SQL statement, e.g. laughtrack query \"SELECT * FROM engagement\", or --list", code=2)
    try:
        names, rows = store.query(_settings_db(db), sql)
    except LaughtrackError as exc:
        _fail(str(exc))
    _print_rows(names, rows, format)


def _print_rows(names: list[str], rows: list[tuple], format: str) -> None:
    if format == "json":
        sys.stdout.write(json.dumps([dict(zip(names, r)) for r in rows], default=str) + "\n")
    elif format == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(names)
        writer.writerows(rows)
        sys.stdout.write(buf.getvalue())
    else:
        table = Table()
        for name in names:
            table.add_column(name, overflow="fold")
        for r in rows:
            table.add_row(*("" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v) for v in r))
        console.print(table)


@app.command()
def demo(out: Path = typer.Option(Path("demo-out"), help="Folder for the demo video, database and cache."),
         model: str = typer.Option("fixture", help="Model dir, hub id, or 'fixture'."),
         device: str = typer.Option("auto", help="auto | cpu | cuda")) -> None:
    """Offline demo: synthesize a 3-minute video, analyse it through the Prefect flow, compare to truth."""
    from laughtrack import demo as demo_mod, store
    from laughtrack.analysis import AnalysisParams

    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    tl = demo_mod.demo_timeline()
    video = out / "demo.mp4"
    truth_path = render_media(tl, video)
    db = out / "laughtrack.duckdb"
    result = run_analysis([str(video)], db, model, device, "all", AnalysisParams(), str(out / "cache"),
                          str(out / "report"))
    if result.failures:
        _fail(result.failures[0]["message"])
    ids = [a["analysis_id"] for a in result.analysed + result.skipped]
    got = store.minute_table(db, ids[:1])
    truth = json.loads(truth_path.read_text())
    _print_minutes(truth, got, video)
    score = demo_mod.minute_errors(truth, got)
    within = sum(e <= 2.0 for e in score["minute_errors"]) / len(score["minute_errors"])
    console.print(f"per-minute laughter/applause seconds within ±2 s of the truth: {within:.0%} "
                  f"(max error {max(score['minute_errors']):.2f} s); "
                  f"total error laughter {score['total_rel_error']['laughter_s']:.1%}, "
                  f"applause {score['total_rel_error']['applause_s']:.1%}")
    from laughtrack.reporting import video_dir_name
    first = (result.analysed + result.skipped)[0]
    page = Path(result.report).parent / "videos" / video_dir_name(first["video_id"], first["stream_index"]) / "report.html"
    console.print(f"video: {video}\ntruth: {truth_path}\ndatabase: {db}\nreport: {page}\n"
                  f"try:   laughtrack query --db {db} \"SELECT * FROM top_moments\"\n"
                  f"demo wall time {time.perf_counter() - t0:.1f} s", soft_wrap=True, highlight=False)


def _print_minutes(truth: list[dict], got: list[dict], video: Path) -> None:
    table = Table(title=f"{video.name}: per minute, laughtrack / truth")
    for col in ("minute", "laughter s", "applause s", "laughs", "applause", "speech s"):
        table.add_column(col, justify="right")
    for t, g in zip(truth, got):
        table.add_row(str(t["minute"]), f"{g['laughter_s']:.2f} / {t['laughter_s']:.2f}",
                      f"{g['applause_s']:.2f} / {t['applause_s']:.2f}",
                      f"{g['laughter_count']} / {t['laughter_count']}", f"{g['applause_count']} / {t['applause_count']}",
                      f"{g['speech_s']:.1f} / {t['speech_s']:.1f}")
    console.print(table)


@app.command()
def watch(inbox: Path = typer.Argument(..., help="Folder uploads land in."),
          db: Path = typer.Option(None, help="DuckDB file, to skip what is already analysed [env LAUGHTRACK_DB]."),
          model: str = typer.Option(None, help="Model dir, hub id or 'fixture' [env LAUGHTRACK_MODEL]."),
          run: bool = typer.Option(False, "--run", help="Analyse in this process instead of emitting events."),
          once: bool = typer.Option(False, "--once", help="Handle what is in the inbox now, then exit."),
          quiet_s: float = typer.Option(2.0, help="Seconds a file's size must stay unchanged to count as complete."),
          ) -> None:
    """Watch an inbox: each complete new upload becomes a laughtrack.video.uploaded event (or, with
    --run, an analysis in this process)."""
    from laughtrack.settings import Settings
    from laughtrack.watch import Watcher, emit_upload
    if not inbox.is_dir():
        _fail(f"inbox '{inbox}' is not a folder", code=2)
    settings = Settings.resolve(db=str(db) if db else None, model=model)
    _prefect_env()
    from prefect.settings import PREFECT_API_URL
    if not run and not PREFECT_API_URL.value():
        _fail("no Prefect server configured (PREFECT_API_URL is unset), so there is nowhere to send "
              "upload events; start one (README: Run it as a service) or use --run", code=2)
    known = _analysed_hashes(settings)
    handle = _analyse_here(settings) if run else (lambda p, sha, size: f"emitted {emit_upload(p, sha, size)}")
    watcher = Watcher(inbox, handle, known=known, quiet_s=quiet_s,
                      log=lambda line: console.print(line, highlight=False, soft_wrap=True))
    console.print(f"watching {inbox.resolve()} ({len(known)} analysed upload(s) known)", highlight=False)
    if once:
        watcher.catch_up()
        watcher.drain()
    else:
        watcher.run()
    if not run:
        from prefect.events.worker import EventsWorker
        EventsWorker.drain_all()


def _analysed_hashes(settings) -> set[str]:
    from laughtrack import store
    from laughtrack.analysis import CODE_VERSION, AnalysisParams
    from sensevoice_core import SenseVoiceError, model_identity
    try:
        _, model_sha = model_identity(settings.model)
        return store.analysed_shas(Path(settings.db), model_sha, AnalysisParams().to_json(), CODE_VERSION)
    except (SenseVoiceError, LaughtrackError):
        return set()


def _analyse_here(settings):
    def handle(path: Path, sha: str, size: int) -> str:
        from flows.analyze import analyze_video
        result = analyze_video(path=str(path), db=settings.db, model=settings.model, cache_dir=settings.cache_dir)
        if result.failures:
            return f"failed: {result.failures[0]['message']}"
        return "analysed" if result.analysed else "already analysed"
    return handle


@app.command()
def serve(inbox: Path = typer.Option(None, help="Inbox folder [env LAUGHTRACK_INBOX, else ./inbox]."),
          db: Path = typer.Option(None, help="DuckDB file [env LAUGHTRACK_DB]."),
          model: str = typer.Option(None, help="Model dir, hub id or 'fixture' [env LAUGHTRACK_MODEL]."),
          inbox_cron: str = typer.Option("*/10 * * * *", help="When to scan the inbox."),
          report_cron: str = typer.Option("0 3 * * *", help="When to rebuild the reports."),
          ) -> None:
    """Serve the three deployments (analyze-inbox, analyze-upload, engagement-report) from this
    process, for users without a work pool. Needs a Prefect server (PREFECT_API_URL)."""
    from laughtrack.settings import ENV, Settings
    settings = Settings.resolve(inbox=str(inbox) if inbox else None, db=str(db) if db else None, model=model)
    for field, var in ENV.items():   # runs are subprocesses: they read these
        os.environ[var] = str(Path(getattr(settings, field)).absolute()) if field in ("db", "inbox", "cache_dir",
                                                                                      "report_dir") else getattr(settings, field)
    _prefect_env()
    from prefect import serve as prefect_serve
    from prefect.events import DeploymentEventTrigger
    from prefect.settings import PREFECT_API_URL
    if not PREFECT_API_URL.value():
        _fail("`laughtrack serve` needs a Prefect server: run `prefect server start` and set PREFECT_API_URL", code=2)
    from flows.analyze import analyze_video
    from flows.inbox import analyze_inbox
    from flows.report import engagement_report
    from laughtrack.watch import EVENT
    trigger = DeploymentEventTrigger(
        expect={EVENT}, match={"prefect.resource.id": "laughtrack.video.*"},
        parameters={"path": "{{ event.payload.path }}", "sha256": "{{ event.payload.sha256 }}",
                    "event_id": "{{ event.id | string }}"})
    prefect_serve(
        analyze_inbox.to_deployment(name="analyze-inbox", cron=inbox_cron),
        analyze_video.to_deployment(name="analyze-upload", triggers=[trigger]),
        engagement_report.to_deployment(name="engagement-report", cron=report_cron))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
