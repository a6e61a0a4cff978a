"""Charts as PNG bytes (matplotlib, Agg): the store's records in, pictures out. The caller decides
where they go."""

from __future__ import annotations

import io
from collections import defaultdict

import matplotlib

from laughtrack.store.records import (
    EmotionMinute, Engagement, LanguageMinute, MinuteDensity, MinuteSeconds, StoredEvent, Timeline,
)

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

WIDTH_IN, HEIGHT_IN, DPI = 10.0, 3.2, 100   # 1000 × 320 px: readable inline and on its own
LAUGH, CLAP, SPEECH = "#e4572e", "#17becf", "#9e9e9e"
EMOTION_COLORS = {"happy": "#f4b400", "surprised": "#ab47bc", "neutral": "#9e9e9e", "sad": "#42a5f5",
                  "angry": "#d32f2f", "other": "#6d4c41", "unknown": "#e0e0e0"}


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    plt.close(fig)
    return buf.getvalue()


def _figure(title: str) -> tuple[Figure, plt.Axes]:
    fig, ax = plt.subplots(figsize=(WIDTH_IN, HEIGHT_IN), layout="constrained")
    ax.set_title(title, loc="left", fontsize=11, fontweight="bold")
    ax.spines[["top", "right"]].set_visible(False)
    return fig, ax


def _minute_ticks(ax: plt.Axes, minutes: int) -> None:
    step = max(1, -(-minutes // 30))   # at most ~30 labels
    ax.set_xticks(range(0, max(minutes, 1), step))
    ax.set_xlim(-0.6, max(minutes, 1) - 0.4)
    ax.set_xlabel("minute of the video")


def minute_bars(minutes: list[MinuteDensity]) -> bytes:
    """Laughter and applause seconds per minute, side by side."""
    fig, ax = _figure("Laughter and applause per minute")
    xs = [m.minute for m in minutes]
    ax.bar([x - 0.2 for x in xs], [m.laughter_s for m in minutes], width=0.4, color=LAUGH, label="laughter")
    ax.bar([x + 0.2 for x in xs], [m.applause_s for m in minutes], width=0.4, color=CLAP, label="applause")
    ax.set_ylabel("seconds in the minute")
    ax.set_ylim(0, max([5.0] + [max(m.laughter_s, m.applause_s) * 1.15 for m in minutes]))
    _minute_ticks(ax, len(minutes))
    ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), frameon=False, ncols=2)
    return _png(fig)


def probability_timeline(windows: Timeline, events: list[StoredEvent], duration_s: float) -> bytes:
    """P(laughter), P(applause), P(speech) across the whole video, detected events shaded."""
    fig, ax = _figure("Event probability across the video")
    unit, name = (60.0, "minutes") if duration_s >= 120 else (1.0, "seconds")
    t = (windows.start_s + windows.end_s) / 2 / unit
    ax.plot(t, windows.p_speech, color=SPEECH, lw=0.8, label="speech")
    ax.plot(t, windows.p_applause, color=CLAP, lw=1.0, label="applause")
    ax.plot(t, windows.p_laughter, color=LAUGH, lw=1.0, label="laughter")
    for e in events:
        if e.label in ("Laughter", "Applause"):
            ax.axvspan(e.start_s / unit, e.end_s / unit, color=LAUGH if e.label == "Laughter" else CLAP,
                       alpha=0.15, lw=0)
    ax.set_xlim(0, max(duration_s / unit, 1 / unit))
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(f"time ({name})")
    ax.set_ylabel("model probability")
    ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), frameon=False, ncols=3)
    return _png(fig)


def emotion_mix(rows: list[EmotionMinute]) -> bytes:
    """Mean emotion probabilities per minute, stacked to 1."""
    fig, ax = _figure("Emotion mix per minute")
    xs = [r.minute for r in rows]
    bottom = [0.0] * len(rows)
    for name, color in EMOTION_COLORS.items():
        values = [getattr(r, name) or 0.0 for r in rows]
        ax.bar(xs, values, bottom=bottom, color=color, width=0.8, label=name)
        bottom = [b + v for b, v in zip(bottom, values)]
    ax.set_ylim(0, 1.0)
    ax.set_ylabel("share of the minute")
    _minute_ticks(ax, (max(xs) + 1) if xs else 1)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=8)
    return _png(fig)


def language_profile(rows: list[LanguageMinute], minutes: int) -> bytes:
    """Share of speech windows per language, per minute."""
    fig, ax = _figure("Spoken language per minute")
    per_minute: dict[int, dict[str, int]] = defaultdict(dict)
    for r in rows:
        per_minute[r.minute][r.language] = r.windows
    languages = sorted({r.language for r in rows})
    xs = list(range(minutes))
    bottom = [0.0] * minutes
    cmap = plt.get_cmap("tab10")
    for i, lang in enumerate(languages):
        values = [per_minute[m].get(lang, 0) / max(1, sum(per_minute[m].values())) for m in xs]
        ax.bar(xs, values, bottom=bottom, color=cmap(i % 10), width=0.8, label=lang)
        bottom = [b + v for b, v in zip(bottom, values)]
    if not languages:
        ax.text(0.5, 0.5, "no speech detected", ha="center", va="center", transform=ax.transAxes, color="#666")
    ax.set_ylim(0, 1.0)
    ax.set_ylabel("share of speech")
    _minute_ticks(ax, minutes)
    if languages:
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=8)
    return _png(fig)


def density_distribution(minutes: list[MinuteSeconds]) -> bytes:
    """How many minutes of the collection had how many seconds of laughter / applause."""
    fig, ax = _figure("Per-minute density across the collection")
    bins = list(range(0, 62, 2))
    ax.hist([m.laughter_s for m in minutes], bins=bins, color=LAUGH, alpha=0.7, label="laughter")
    ax.hist([m.applause_s for m in minutes], bins=bins, color=CLAP, alpha=0.7, label="applause")
    ax.set_xlabel("seconds per minute")
    ax.set_ylabel("minutes")
    ax.set_xlim(0, 60)
    ax.legend(loc="upper right", frameon=False)
    return _png(fig)


def leaderboard(rows: list[Engagement], top: int = 20) -> bytes:
    """Engagement score of the top videos, best first."""
    rows = rows[:top]
    fig, ax = plt.subplots(figsize=(WIDTH_IN, max(2.0, 0.3 * len(rows) + 1)), layout="constrained")
    ax.set_title("Engagement score (% of time with laughter or applause)", loc="left", fontsize=11,
                 fontweight="bold")
    ax.spines[["top", "right"]].set_visible(False)
    labels = [_label(r) for r in rows][::-1]
    ax.barh(labels, [r.engagement_score or 0.0 for r in rows][::-1], color=LAUGH)
    ax.set_xlabel("engagement score")
    return _png(fig)


def _label(row: Engagement, width: int = 40) -> str:
    name = str(row.path).rsplit("/", 1)[-1]
    name = name if len(name) <= width else name[: width - 1] + "…"
    return f"{name} [{row.stream_index}]"
