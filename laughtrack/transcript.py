"""The timed rich transcript: what was said, how, and where the audience answered — one record,
built from the store, that the page, the report, the `/analyze` API and the captions all show.

Items in time order:
- a **speech line**: its start and end, the language, the emotion as funasr's rich postprocess
  shows it (😊, 😔, …; nothing for neutral) with its probability (the mean over the line's scan
  windows), and the words;
- a **sound**: every event the scan found that is not speech — laughter, applause, music (BGM),
  crying, coughing, … — with its duration and confidence (its peak probability).

A transcribed speech chunk (≤ 15 s) is split at each short sound inside it (SPLITTING), by the
times of its tokens: the words before the sound end where it starts, the words after begin where it
ends, so a laugh sits between the words it followed and the words after it, and no speech line
spans one. Music and breath do not split speech (music can run under a whole talk).

Text form: one line per item, `m:ss.s` first — `1:03.0  😀 [laughter 1.2 s, p 0.99]`,
`1:04.2  [en 😊 0.81] Thank you all.`
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

from sensevoice_core.tags import emotion_emoji, event_emoji

if TYPE_CHECKING:
    from laughtrack.store import Store
    from laughtrack.store.records import StoredEvent, TranscriptSegment, WindowProbs

NOT_SOUNDS = {"Speech", "Event_UNK"}
SPLITTING = {"Laughter", "Applause", "Cry", "Cough", "Sneeze"}     # short sounds that end a line of speech
MIN_LINE_S = 0.2            # a line is on screen at least this long
NAMES = {"Laughter": "laughter", "Applause": "applause", "BGM": "music", "Cry": "crying", "Cough": "coughing",
         "Sneeze": "sneezing", "Breath": "breathing"}


@dataclass(frozen=True, slots=True)
class SpeechLine:
    """What was said between two times, in one language, with one emotion."""

    start_s: float
    end_s: float
    language: str | None
    emotion: str | None          # the model's tag: HAPPY, NEUTRAL, …
    emotion_p: float | None      # its mean probability over the line's windows
    words: str

    @property
    def emoji(self) -> str:
        return emotion_emoji(self.emotion)

    def text(self) -> str:
        mood = f" {self.emoji} {self.emotion_p:.2f}" if self.emoji and self.emotion_p is not None else ""
        return f"[{self.language or '?'}{mood}] {self.words}"


@dataclass(frozen=True, slots=True)
class SoundLine:
    """A sound the scan found: laughter, applause, music, …"""

    start_s: float
    end_s: float
    label: str                   # the model's event tag: Laughter, Applause, BGM, …
    peak_p: float
    mean_p: float

    @property
    def name(self) -> str:
        return NAMES.get(self.label, self.label.lower())

    def text(self) -> str:
        emoji = event_emoji(self.label)
        return f"{emoji + ' ' if emoji else ''}[{self.name} {self.end_s - self.start_s:.1f} s, p {self.peak_p:.2f}]"


Item = SpeechLine | SoundLine


@dataclass(frozen=True)
class RichTranscript:
    """Speech lines and sounds, in time order."""

    items: tuple[Item, ...]

    @classmethod
    def ordered(cls, items: list[Item]) -> RichTranscript:
        """Items in time order: at one time, a sound before the words (the laugh ends the line)."""
        return cls(tuple(sorted(items, key=lambda i: (i.start_s, isinstance(i, SpeechLine), i.end_s))))

    def text(self) -> str:
        """One line per item, its time first (the page, the API, the report)."""
        return "\n".join(f"{clock(i.start_s)}  {i.text()}" for i in self.items)

    def plain(self) -> str:
        """The words alone, one line of speech per line."""
        return "\n".join(i.words for i in self.items if isinstance(i, SpeechLine) and i.words)

    def as_json(self) -> list[dict]:
        """Each item as a dict: `kind` (speech or sound), its times and fields, and its line of text."""
        return [dict(asdict(i), kind="speech" if isinstance(i, SpeechLine) else "sound", text=i.text())
                for i in self.items]

    def dumps(self) -> str:
        return json.dumps(self.as_json(), ensure_ascii=False)

    @property
    def sounds(self) -> list[SoundLine]:
        return [i for i in self.items if isinstance(i, SoundLine)]

    @property
    def speech(self) -> list[SpeechLine]:
        return [i for i in self.items if isinstance(i, SpeechLine)]


def clock(seconds: float) -> str:
    """m:ss.s (h:mm:ss.s past an hour) for a time in the video."""
    m, s = divmod(round(max(0.0, seconds), 1), 60)
    h, m = divmod(int(m), 60)
    return f"{h}:{m:02d}:{s:04.1f}" if h else f"{m}:{s:04.1f}"


def of(store: Store, analysis_id: str) -> RichTranscript:
    """The rich transcript of an analysis, read from the store."""
    return build(store.transcript(analysis_id), store.events(analysis_id), store.window_probs(analysis_id, "emotion"))


def build(segments: list[TranscriptSegment], events: list[StoredEvent], emotions: WindowProbs) -> RichTranscript:
    """Speech lines (each segment split at the short sounds inside it) and sounds, in time order."""
    sounds = [SoundLine(e.start_s, e.end_s, e.label, e.peak_p, e.mean_p) for e in events if e.label not in NOT_SOUNDS]
    splitting = [s for s in sounds if s.label in SPLITTING]
    lines = [line for seg in segments for line in _split(seg, splitting, emotions)]
    return RichTranscript.ordered([*lines, *sounds])


def _split(seg: TranscriptSegment, sounds: list[SoundLine], emotions: WindowProbs) -> list[SpeechLine]:
    """The segment's words as lines, cut at each sound inside it by its tokens' times: the words
    before the sound's middle end where it starts, the words after begin where it ends."""
    tokens = [(piece, a, b) for piece, a, b in json.loads(seg.tokens_json or "[]") if not piece.startswith("<|")]
    inside = [s for s in sounds if s.start_s < seg.end_s and s.end_s > seg.start_s]
    if not inside or not tokens:
        return [_line(seg, seg.start_s, seg.end_s, _words(tokens) if tokens else seg.text, emotions)]
    lines, after = [], seg.start_s
    for sound in sorted(inside, key=lambda s: s.start_s):
        middle = (sound.start_s + sound.end_s) / 2
        before = [t for t in tokens if (t[1] + t[2]) / 2 < middle]
        if before:
            lines.append(_between(seg, before, after, min(sound.start_s, before[-1][2]), emotions))
        tokens = tokens[len(before):]
        after = max(after, sound.end_s)
    if tokens:
        lines.append(_between(seg, tokens, after, seg.end_s, emotions))
    return [line for line in lines if line.words]


def _between(seg: TranscriptSegment, tokens: list, after: float, until: float, emotions: WindowProbs) -> SpeechLine:
    """A line of `tokens` between the end of one sound and the start of the next; words said over a
    sound (a comedian still talking as the laugh begins) keep their own times instead."""
    start, end = max(after, tokens[0][1]), until
    if end - start < MIN_LINE_S:
        start, end = tokens[0][1], max(tokens[-1][2], tokens[0][1] + MIN_LINE_S)
    return _line(seg, start, end, _words(tokens), emotions)


def _words(tokens: list) -> str:
    return "".join(piece for piece, _, _ in tokens).replace("\u2581", " ").strip()


def _line(seg: TranscriptSegment, start: float, end: float, words: str, emotions: WindowProbs) -> SpeechLine:
    probs = emotions.probs.get(seg.emotion or "")
    inside = (emotions.start_s < end) & (emotions.end_s > start) if len(emotions.start_s) else np.zeros(0, bool)
    p = float(probs[inside].mean()) if probs is not None and inside.any() else None
    return SpeechLine(round(start, 3), round(end, 3), seg.language, seg.emotion, p, words)
