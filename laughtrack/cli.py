"""`laughtrack` command line. Formats and exit codes only; the work lives in the layers below."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from laughtrack.errors import LaughtrackError, TimelineError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Find the laughter and applause in videos.")
console = Console()
err = Console(stderr=True)


def _fail(message: str, code: int = 1) -> None:
    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@app.command()
def synth(timeline: Path = typer.Argument(..., help="Timeline JSON (see README)."),
          out: Path = typer.Argument(..., help="Media file to write: .mp4 .mkv .webm .mov .wav …")) -> None:
    """Render a timeline to a media file and write OUT.truth.json beside it."""
    from laughtrack import media, synth as synth_mod
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
def demo(out: Path = typer.Option(Path("demo-out"), help="Folder for the demo video and results."),
         model: str = typer.Option("fixture", help="Model dir, hub id, or 'fixture'."),
         device: str = typer.Option("auto", help="auto | cpu | cuda")) -> None:
    """Offline demo: synthesize a 3-minute video, scan it with the bundled model, compare to truth."""
    from laughtrack import demo as demo_mod, media
    from sensevoice_core import SenseVoiceError, ScanOptions, load_model, scan

    out.mkdir(parents=True, exist_ok=True)
    tl = demo_mod.demo_timeline()
    video = out / "demo.mp4"
    truth = render_media(tl, video)
    try:
        t0 = time.perf_counter()
        sv = load_model(model, device=device)
        t_load = time.perf_counter() - t0
        audio = media.decode_audio(video)
        t1 = time.perf_counter()
        result = scan(sv, audio, ScanOptions())
        t_scan = time.perf_counter() - t1
    except (LaughtrackError, SenseVoiceError) as exc:
        _fail(str(exc))
    tags = result.tags("event")
    p_event = {name: result.prob("event", name) for name in result.names["event"]}
    checks = demo_mod.compare_windows(tl, result.start_s, result.end_s, tags, p_event)
    table = Table(title=f"{video} — windows of {ScanOptions().window_s:g} s every {ScanOptions().hop_s:g} s")
    for col in ("truth", "from", "to", "windows", "tagged right", "mean P(true event)"):
        table.add_column(col, justify="left" if col == "truth" else "right")
    for c in checks:
        table.add_row(c.segment.kind, f"{c.segment.start_s:.1f}", f"{c.segment.end_s:.1f}", str(c.windows),
                      str(c.agree), "-" if c.windows == 0 else f"{c.mean_p:.2f}")
    console.print(table)
    total = sum(c.windows for c in checks)
    right = sum(c.agree for c in checks)
    console.print(f"{right}/{total} windows ({right / total:.1%}) tagged with the true event; "
                  f"model {sv.model_dir.name} on {sv.device} loaded in {t_load:.1f} s; "
                  f"scan {tl.duration_s / t_scan:.0f}x realtime")
    console.print(f"video: {video}\ntruth: {truth}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
