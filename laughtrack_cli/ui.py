"""`laughtrack ui`: the web page (Gradio Blocks) — the seed's app, done our way.

    Analyse  drop a video/audio file or record one, pick the language, press Analyse: the same
             Prefect flow as the CLI into the same database (a known file is answered at once),
             then the timed rich transcript (a click on a line plays the video from there), the
             event timeline (hover for values, drag to zoom, double-click for the whole video),
             the per-minute chart and table, the top moments (each plays the video from a second
             before it), the HTML report. The action is also the API endpoint `analyze` for
             gradio_client scripts: the transcript as text and as JSON, and the per-minute table.
    Library  every analysed video, ranked; picking one shows its page without analysing again.
    Query    read-only SQL over the results, the schema beside it, the result as CSV.

Bad input is one message on the page and nothing stored; the server binds 127.0.0.1 unless told
otherwise, and then wants --auth.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

from sensevoice_core.model import silence_pydub

silence_pydub()         # gradio imports pydub, which warns about a PATH ffmpeg it is never asked to use
import gradio as gr  # noqa: E402

from laughtrack import media, progress
from laughtrack.config import RunConfig
from laughtrack.errors import LaughtrackError, MediaError, disk_fault
from laughtrack.records import Stage
from laughtrack.store import open_store
from laughtrack.store.child import query_in_child
from laughtrack.store.records import Moment
from laughtrack.transcript import clock
from reports import pages
from reports.site import page_path
from sensevoice_core.options import LANGUAGE_NAMES

LANGUAGE_CHOICES = [(name, code) for code, name in LANGUAGE_NAMES.items()]     # the dropdown: (shown, value)
STEPS = {Stage.PROBE: (0.05, "extract"), Stage.EXTRACT: (0.15, "extract"), Stage.SCAN: (0.35, "scan"),
         Stage.TRANSCRIBE: (0.75, "transcribe"), Stage.STORE: (0.9, "store")}
MAX_ROWS = 10_000          # rows a query shows on the page
THEME = gr.themes.Default(font=["system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])  # no web fonts
CSS = "#moments button {justify-content: flex-start} footer {display: none !important}"


@dataclass(frozen=True)
class App:
    """What the page's handlers share: the configuration, where uploads and reports live, and the
    warm-up (Prefect's server, the model) that analyses wait for."""

    config: RunConfig
    uploads: Path
    max_bytes: int
    ready: threading.Event = field(default_factory=threading.Event)
    problems: list = field(default_factory=list)

    def warm_up(self) -> None:
        """Start Prefect's server and load the model while the page is first looked at (one thread:
        two threads starting Prefect's temporary server at once trip over each other)."""
        from prefect import get_client

        from flows.analyze import warm_up
        try:
            with get_client(sync_client=True) as client:
                client.hello()
            warm_up(self.config)
        except Exception as exc:  # noqa: BLE001 — shown on the page at the first analysis
            self.problems.append(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        finally:
            self.ready.set()

    def wait_until_warm(self) -> None:
        self.ready.wait()
        if self.problems:
            raise gr.Error(f"laughtrack could not start: {self.problems[0]}")

    @property
    def store(self):
        return open_store(self.config.store)


REFUSED = "the page analyses only files uploaded or recorded through it"


def accept(app: App, upload: str | None, recording: str | None) -> tuple[Path, str]:
    """The file to analyse, kept under the uploads folder once per content (so it can be replayed);
    gr.Error with one line for anything that is not an audio/video file we can read.

    Only what the page was given is read: a path must resolve to a file inside Gradio's own upload
    and recording folder, or it is refused with one message that says nothing of what exists."""
    source = upload or recording
    if not source:
        raise gr.Error("Drop a video or audio file, or record from the microphone, first.")
    if not given_to_the_page(source):
        raise gr.Error(REFUSED)
    path, name = Path(source), Path(source).name
    if path.stat().st_size > app.max_bytes:
        raise gr.Error(f"'{name}' is {path.stat().st_size / 2**20:.0f} MB; the limit here is "
                       f"{app.max_bytes / 2**20:.0f} MB")
    try:
        sha, _, _ = media.probe_and_hash(path)
    except MediaError as exc:
        raise gr.Error(str(exc).replace(str(path), name)) from None
    return keep(app.uploads / sha[:16], path), name


def given_to_the_page(source: str, upload_folder: str | None = None) -> bool:
    """Whether `source` (symlinks and `..` resolved) is a regular file in Gradio's upload folder."""
    from gradio.utils import get_upload_folder, is_in_or_equal
    try:
        resolved = Path(source).resolve(strict=True)
    except (OSError, RuntimeError, ValueError):
        return False
    return resolved.is_file() and is_in_or_equal(resolved, upload_folder or get_upload_folder())


def kept_copy(folder: Path) -> Path | None:
    """The page's copy in `folder`, if it has one."""
    return next((p for p in sorted(folder.glob("*")) if p.is_file() and not p.name.startswith(".")), None)


def keep(folder: Path, path: Path) -> Path:
    """The page's copy of an upload: one per content (the first name it came under), so the player
    can replay it and uploading it again under other names adds nothing."""
    kept = kept_copy(folder)
    if kept is not None:
        os.utime(kept)          # last used now (`laughtrack cache prune`)
        return kept
    folder.mkdir(parents=True, exist_ok=True)
    kept, tmp = folder / path.name, folder / f".{path.name}.{os.getpid()}.part"
    try:
        shutil.copyfile(path, tmp)
        os.replace(tmp, kept)
    except OSError as exc:
        raise gr.Error(str(disk_fault(exc, str(folder), "the upload") or exc)) from None
    finally:
        tmp.unlink(missing_ok=True)
    return kept


def analyse(app: App, upload, language: str, recording=None, bar=gr.Progress()):
    """Analyse one file (or answer at once if it is known): (the rich transcript as text with times
    and sound tags, the per-minute table, the transcript as JSON, the page)."""
    from flows.analyze import analyze_video
    path, name = accept(app, upload, recording)
    bar(0.0, desc="starting")
    app.wait_until_warm()
    bar(0.02, desc="extract")
    config = replace(app.config, params=replace(app.config.params, language=language or "auto"))
    with progress.following(lambda _, stage: _step(bar, stage)):      # this request's run only
        result = analyze_video(path=str(path), config=config)
    if result.failures:
        raise gr.Error(result.failures[0].message.replace(str(path), name))
    done = (result.analysed + result.skipped)[0]
    page = pages.video_page(app.store, done.analysis_id)
    return page.text(), table(page), page.transcript.as_json(), page


def _step(bar, stage: Stage) -> None:
    if stage in STEPS:
        fraction, label = STEPS[stage]
        bar(fraction, desc=label)


def table(page: pages.VideoPage):
    import pandas as pd
    return pd.DataFrame(page.minutes, columns=list(pages.MINUTE_COLUMNS))


def show(app: App, page: pages.VideoPage | None, plain: bool):
    """Everything the page shows of `page` beside the text, the JSON and the table."""
    if page is None:
        return (gr.update(),) * 7
    kept = kept_copy(app.uploads / page.target.video_id)
    report = page_path(app.config.reports, page.target)
    link = (f'<a href="/gradio_api/file={report}" target="_blank" rel="noopener">Open the full report</a>'
            if report.exists() else "")
    return (transcript_rows(page, plain), page.text(plain), timeline(page), _image(page.minutes_png),
            page.moments, gr.update(value=str(kept) if kept else None, visible=kept is not None),
            f"### {page.title}\n{link}")


def transcript_rows(page: pages.VideoPage | None, plain: bool):
    import pandas as pd
    lines = page.lines(plain) if page else []
    return pd.DataFrame([[line.at, line.text] for line in lines], columns=list(pages.TRANSCRIPT_COLUMNS))


def seek(page: pages.VideoPage | None, plain: bool, evt: gr.SelectData):
    """A click on a transcript line plays the video from where the line starts."""
    row = evt.index[0] if isinstance(evt.index, (list, tuple)) else -1
    at = page.seek_to(plain, row, evt.row_value) if page else None
    return gr.update() if at is None else gr.Video(playback_position=at)


def timeline(page: pages.VideoPage | None, from_s: float | None = None, to_s: float | None = None):
    """The event timeline between two times (default: all of it), thinned to what a plot can draw."""
    import pandas as pd
    rows = pages.timeline_points(page.timeline, from_s, to_s) if page else []
    lim = ([from_s / 60, to_s / 60] if from_s is not None and to_s is not None
           else [0, page.duration_s / 60] if page else None)
    return gr.LinePlot(value=pd.DataFrame(rows, columns=list(pages.TIMELINE_COLUMNS)), x_lim=lim)


def zoom(page: pages.VideoPage | None, evt: gr.SelectData):
    """A stretch dragged across the timeline: that stretch, drawn at up to full resolution."""
    lo, hi = sorted(float(v) for v in evt.index[:2])
    return timeline(page, lo * 60, hi * 60)


def _image(png: bytes):
    from PIL import Image
    return Image.open(io.BytesIO(png))


def leaderboard(app: App):
    import pandas as pd
    store = app.store
    rows = store.collection_report().leaderboard if store.exists() else []
    frame = pd.DataFrame([{"video": Path(str(r.path)).name, "stream": r.stream_index,
                           "minutes": round((r.duration_s or 0) / 60, 1),
                           "laughs/min": round(r.laughs_per_min or 0, 2),
                           "applause/min": round(r.applause_per_min or 0, 2),
                           "score": round(r.engagement_score or 0, 1)} for r in rows])
    choices = [(f"{Path(str(r.path)).name} · stream {r.stream_index}", f"{r.video_id}:{r.stream_index}")
               for r in rows]
    return frame, gr.update(choices=choices, value=None)


def pick(app: App, choice: str | None):
    """The page of a library video, from the store (no analysis)."""
    if not choice:
        raise gr.Error("Pick a video first.")
    video_id, stream = choice.split(":")
    page = pages.video_page(app.store, app.store.target(video_id, int(stream)).analysis_id)
    return page.text(), table(page), page.transcript.as_json(), page, gr.Tabs(selected="analyse")


def run_query(app: App, sql: str):
    """Read-only SQL: the rows and a CSV of them (the same guard and limits as `laughtrack query`).
    It runs in a process of its own, so a runaway query can be stopped whole and never shares a
    DuckDB instance with the analyses this page runs."""
    import pandas as pd
    try:
        names, rows = query_in_child(app.config.store, sql, MAX_ROWS)
    except LaughtrackError as exc:
        raise gr.Error(str(exc)) from None
    if len(rows) == MAX_ROWS:
        gr.Info(f"the first {MAX_ROWS:,} rows; `laughtrack query --format csv` gives them all")
    out = Path(tempfile.mkdtemp(prefix="laughtrack-query-")) / "result.csv"
    with open(out, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(names)
        writer.writerows(rows)
    return pd.DataFrame(rows, columns=names), gr.update(value=str(out), visible=True)


def schema_text(app: App) -> str:
    from laughtrack.store import schema
    lines = ["**Tables**"] + [f"- `{t.name}`: {', '.join(t.names)}" for t in schema.TABLES.values()
                              if not t.name.startswith(("write_lock", "schema_version"))]
    lines += ["", "**Views**"] + [f"- `{v.name}`: {', '.join(n for n, _ in v.columns)}" for v in schema.VIEWS]
    return "\n".join(lines)


@dataclass(frozen=True)
class View:
    """The components a video's page is drawn in (the Analyse tab)."""

    title: gr.Markdown
    player: gr.Video
    lines: gr.Dataframe         # the transcript, one row per line; a click seeks the player
    text: gr.Textbox            # the transcript as text (the API's first output)
    rich: gr.JSON               # ... and as JSON (the API's third)
    plain: gr.Checkbox
    timeline: gr.LinePlot
    chart: gr.Image
    minutes: gr.Dataframe
    moments: gr.State

    def analysis_outputs(self, current: gr.State) -> list:
        """What `analyze` returns, in the API's order."""
        return [self.text, self.minutes, self.rich, current]

    def page_outputs(self) -> list:
        return [self.lines, self.text, self.timeline, self.chart, self.moments, self.player, self.title]


def build(app: App) -> gr.Blocks:
    """The page: three tabs over one results database."""
    with gr.Blocks(title="laughtrack", analytics_enabled=False) as blocks:
        gr.Markdown("# laughtrack\nWhere the audience laughed and applauded, minute by minute.")
        current = gr.State(None)
        with gr.Tabs(selected="analyse") as tabs:
            with gr.Tab("Analyse", id="analyse", elem_id="tab-analyse"):
                view = _analyse_tab(app, current)
            with gr.Tab("Library", id="library", elem_id="tab-library") as library:
                _library_tab(app, current, tabs, view, library)
            with gr.Tab("Query", id="query", elem_id="tab-query"):
                _query_tab(app)
    return blocks


def _analyse_tab(app: App, current: gr.State) -> View:
    with gr.Row():
        with gr.Column(scale=1, min_width=320):
            upload = gr.File(label="Video or audio file", type="filepath", elem_id="media")
            recording = gr.Audio(sources=["upload", "microphone"], type="filepath", label="…or record",
                                 elem_id="recording")
            language = gr.Dropdown(LANGUAGE_CHOICES, value="auto", label="Language", elem_id="language")
            go = gr.Button("Analyse", variant="primary", elem_id="analyse")
        with gr.Column(scale=2):
            title = gr.Markdown(elem_id="title")
            player = gr.Video(label="Video", interactive=False, visible=False, elem_id="player")
            lines = gr.Dataframe(headers=list(pages.TRANSCRIPT_COLUMNS), label="Transcript (click a line to play it)",
                                 interactive=False, wrap=True, max_height=420, column_widths=["12%", "88%"],
                                 elem_id="transcript")
            plain = gr.Checkbox(label="Plain text (no tags)", elem_id="plain")
            with gr.Accordion("Transcript as text", open=False):
                text = gr.Textbox(show_label=False, lines=8, interactive=False, elem_id="transcript-text")
            rich = gr.JSON(visible=False, elem_id="transcript-json")
    timeline_plot = gr.LinePlot(x="minute", y="probability", color="sound", color_map=pages.TIMELINE_COLORS,
                                tooltip=["at", "sound", "probability"], y_lim=[0, 1],
                                label="Event probability (drag across to zoom, double-click for the whole video)",
                                elem_id="timeline")
    box = gr.Column(elem_id="moments")
    view = View(title, player, lines, text, rich, plain, timeline=timeline_plot,
                chart=gr.Image(interactive=False, show_label=False, elem_id="chart"),
                minutes=gr.Dataframe(label="Per minute", interactive=False, elem_id="minutes"), moments=gr.State([]))
    _moment_buttons(box, view)
    run = go.click(partial(analyse, app), [upload, language, recording], view.analysis_outputs(current),
                   api_name="analyze")
    run.success(partial(show, app), [current, plain], view.page_outputs(), api_visibility="private")
    plain.change(lambda page, on: (transcript_rows(page, on), page.text(on) if page else ""), [current, plain],
                 [lines, text], api_visibility="private")
    lines.select(seek, [current, plain], player, api_visibility="private")
    timeline_plot.select(zoom, current, timeline_plot, api_visibility="private")
    timeline_plot.double_click(timeline, current, timeline_plot, api_visibility="private")
    return view


def _moment_buttons(box: gr.Column, view: View) -> None:
    """One button per top moment: it plays the video from a second before the moment."""
    with box:
        @gr.render(inputs=view.moments)
        def buttons(moments: list[Moment]):
            if moments:
                gr.Markdown("**Top moments** (play from a second before)")
            for m in moments:
                said = f" — “{m.said_before[-60:]}”" if m.said_before else ""
                button = gr.Button(f"▶ {clock(m.start_s)}  {m.label}, {m.end_s - m.start_s:.1f} s{said}", size="sm",
                                   elem_classes=["moment"])
                button.click(lambda start=m.play_from_s: gr.Video(playback_position=start), None, view.player,
                             api_visibility="private")


def _library_tab(app: App, current: gr.State, tabs: gr.Tabs, view: View, library: gr.Tab) -> None:
    board = gr.Dataframe(label="Engagement, all videos (sort by any column)", interactive=False, elem_id="board")
    with gr.Row():
        choice = gr.Dropdown(label="Video", choices=[], elem_id="pick", scale=3)
        show_page = gr.Button("Show its page", elem_id="show", scale=1)
    library.select(partial(leaderboard, app), None, [board, choice], api_visibility="private")
    picked = show_page.click(partial(pick, app), choice, [*view.analysis_outputs(current), tabs],
                             api_visibility="private")
    picked.success(partial(show, app), [current, view.plain], view.page_outputs(), api_visibility="private")


def _query_tab(app: App) -> None:
    with gr.Row():
        with gr.Column(scale=3):
            sql = gr.Code(value="SELECT path, laughs_per_min, applause_per_min, engagement_score\nFROM engagement\n"
                                "ORDER BY engagement_score DESC", language="sql", label="SQL (read-only)",
                          interactive=True, elem_id="sql")
            go = gr.Button("Run", elem_id="run-sql")
            result = gr.Dataframe(label="Result", interactive=False, elem_id="result")
            download = gr.DownloadButton("Download CSV", visible=False, elem_id="csv")
        with gr.Column(scale=2):
            gr.Markdown(schema_text(app), elem_id="schema")
    go.click(partial(run_query, app), sql, [result, download], api_name="query")


class OnlyGivenFiles:
    """ASGI middleware: a call to the page's API may name only files in Gradio's upload folder.

    Gradio copies any server path a client names in a FileData payload into its cache before a
    handler sees it (6.31: its own upload-folder check does not run on API calls), and then serves
    the copy. So every API request is read first; one that names a file elsewhere (or a URL) is
    refused with 403 and one message that says nothing of what exists there."""

    MAX_BODY = 8 << 20          # API calls are small JSON; uploads go to /upload, which is not read here

    def __init__(self, app, upload_folder: str):
        self.app, self.upload_folder = app, upload_folder

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or "/gradio_api/" not in scope["path"] \
                or scope["path"].rstrip("/").endswith("/upload"):
            return await self.app(scope, receive, send)
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.MAX_BODY:
                return await _answer(send, 413, "request too large")
        if not self.given(body):
            return await _answer(send, 403, REFUSED)
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()
        return await self.app(scope, replay, send)

    def given(self, body: bytes) -> bool:
        """Whether every file the request names is one the page was given."""
        import json
        try:
            payload = json.loads(body or b"null")
        except ValueError:
            return True                     # not JSON: Gradio refuses it itself
        return all(isinstance(p, str) and given_to_the_page(p, self.upload_folder) for p in _file_paths(payload))


def _file_paths(node) -> list:
    """The `path` of every FileData in a request payload."""
    found = []
    if isinstance(node, dict):
        if (node.get("meta") or {}).get("_type") == "gradio.FileData" or ("path" in node and "orig_name" in node):
            found.append(node.get("path"))
        for value in node.values():
            found += _file_paths(value)
    elif isinstance(node, list):
        for value in node:
            found += _file_paths(value)
    return found


async def _answer(send, status: int, message: str) -> None:
    import json
    body = json.dumps({"detail": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def serve(config: RunConfig, host: str, port: int, auth: tuple[str, str] | None, max_upload_mb: int) -> None:
    """Build the page and serve it until interrupted."""
    app = App(config, Path(config.cache_dir) / "ui-uploads", max_upload_mb * 2**20)
    app.uploads.mkdir(parents=True, exist_ok=True)
    Path(config.reports).mkdir(parents=True, exist_ok=True)
    threading.Thread(target=app.warm_up, daemon=True, name="warm-up").start()
    from gradio.utils import get_upload_folder
    from starlette.middleware import Middleware
    build(app).queue(default_concurrency_limit=1).launch(
        server_name=host, server_port=port, auth=auth, max_file_size=f"{max_upload_mb}mb", theme=THEME, css=CSS,
        allowed_paths=[str(app.uploads), str(Path(config.reports).absolute())], show_error=False, quiet=True,
        enable_monitoring=False, footer_links=[],
        app_kwargs={"middleware": [Middleware(OnlyGivenFiles, upload_folder=get_upload_folder())]})
