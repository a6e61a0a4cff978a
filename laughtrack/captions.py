"""Captions: the rich transcript written for viewers, and caption files read back as sound labels.

**Writing** (`laughtrack export --captions`, `laughtrack synth`): speech in cues of at most two
lines of at most 42 columns (a wide CJK character takes two) and at most 7 s; each sound as a cue of
its own in capitals (`[LAUGHTER]`, `[APPLAUSE]`, `[MUSIC]`, …) as deaf and hard-of-hearing
captioning marks them; in time order and never overlapping. webvtt-py writes WebVTT, srt writes SRT.

**Reading** (`laughtrack eval` / `tune` given `talk.vtt` or `talk.srt` beside `talk.mp4`): the
sound cues become labels by this table, case-insensitively (SOUND_FORMS):

| a cue holding …                                                        | is labelled |
|------------------------------------------------------------------------|-------------|
| `(…)` or `[…]` with a word beginning laugh, chuckl, giggl or snicker:  | Laughter    |
|   `(Laughter)` `[laughs]` `[LAUGHING]` `(audience laughs)` `[chuckles]` |             |
| `(…)` or `[…]` with a word beginning applau or clap:                   | Applause    |
|   `(Applause)` `[APPLAUSE]` `(audience applauds)` `[clapping]`         |             |
|   `(Cheers and applause)`                                              |             |
| `♪` or `♫` anywhere, or `(…)` / `[…]` with the word music:             | BGM (music) |
|   `♪ la la ♪` `[MUSIC]` `(upbeat music playing)`                       |             |

A label spans its cue; cues of one label that touch (a long sound split over cues) are one label.
Anything else in brackets (`[door slams]`, `(Cheers)`, `[SPEAKER 2]`) and cues that are words
alone are not labels: they are counted and left out. A cue is marked up (`<i>`, `{\\an8}`) as
often as not; the markup is dropped before matching. A file the libraries cannot read, a cue whose
times cannot be read, or one that ends before it starts is a CaptionError naming `file:line`.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from laughtrack.errors import LaughtrackError
from laughtrack.transcript import RichTranscript, SpeechLine

FORMATS = ("vtt", "srt")
LINE_CHARS = 42             # columns per caption line (the broadcasters' usual limit)
CUE_LINES = 2               # lines per cue
CUE_MAX_S = 7.0             # a cue longer than this is split
CUE_MIN_S = 1.0             # a sound cue shorter than this is lengthened (into silence only)
SOUND_CUES = {"Laughter": "[LAUGHTER]", "Applause": "[APPLAUSE]", "BGM": "[MUSIC]", "Cry": "[CRYING]",
              "Cough": "[COUGHING]", "Sneeze": "[SNEEZING]"}
SOUND_FORMS = (("Laughter", re.compile(r"\b(laugh|chuckl|giggl|snicker)", re.I)),
               ("Applause", re.compile(r"\b(applau|clap)", re.I)),
               ("BGM", re.compile(r"\bmusic\b", re.I)))
MUSIC_SIGNS = ("♪", "♫")
TOUCHING_S = 0.1            # cues of one sound closer than this are one label
_BRACKETS = re.compile(r"\(([^()]*)\)|\[([^\[\]]*)\]")
_MARKUP = re.compile(r"<[^>]*>|\{\\[^}]*\}")


class CaptionError(LaughtrackError):
    """A caption file, or a cue in it, that cannot be read."""


@dataclass(frozen=True, slots=True)
class Cue:
    """One caption: its times and its text (at most two lines when laughtrack writes it)."""

    start_s: float
    end_s: float
    text: str


# --- writing ------------------------------------------------------------------------------------

def caption_cues(transcript: RichTranscript) -> list[Cue]:
    """The transcript as captions: speech cues and sound cues, in time order, never overlapping (a
    cue that runs into the next ends where it starts, or the two become one cue)."""
    cues: list[Cue] = []
    for item in transcript.items:
        if isinstance(item, SpeechLine):
            cues += _speech_cues(item)
        elif item.label in SOUND_CUES:
            cues += _sound_cues(item.start_s, max(item.end_s, item.start_s + CUE_MIN_S), SOUND_CUES[item.label])
    return _without_overlaps(sorted(cues, key=lambda c: (c.start_s, c.end_s)))


def render(cues: list[Cue], fmt: str) -> str:
    """Cues as WebVTT (webvtt-py) or SRT (srt)."""
    if fmt == "vtt":
        import webvtt
        from webvtt.models import Timestamp
        doc = webvtt.WebVTT()
        for c in cues:
            doc.captions.append(webvtt.Caption(str(Timestamp.from_seconds(c.start_s)),
                                               str(Timestamp.from_seconds(c.end_s)), c.text))
        return doc.content
    if fmt == "srt":
        import srt
        return srt.compose([srt.Subtitle(index=i, start=dt.timedelta(seconds=c.start_s),
                                         end=dt.timedelta(seconds=c.end_s), content=c.text)
                            for i, c in enumerate(cues, 1)], reindex=False)
    raise ValueError(f"captions are {' or '.join(FORMATS)}, not {fmt!r}")


def columns(text: str) -> int:
    """How wide a line shows: a wide (CJK) character takes two columns."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _sound_cues(start: float, end: float, text: str) -> list[Cue]:
    """A sound as cues of ≤ 7 s (a long applause says so again, rather than one cue for a minute)."""
    pieces = max(1, -(-(end - start) // CUE_MAX_S))
    step = (end - start) / pieces
    return [Cue(round(start + k * step, 3), round(start + (k + 1) * step, 3), text) for k in range(int(pieces))]


def _speech_cues(line: SpeechLine) -> list[Cue]:
    """A speech line's words packed into cues of ≤ 2 lines of ≤ 42 columns, each short enough to last
    ≤ 7 s at the line's pace (its time shared out by columns). Text without spaces (Chinese,
    Japanese) breaks between characters."""
    words = [piece for word in line.words.split() for piece in _pieces(word)]
    width = columns(" ".join(words))
    per_col = (line.end_s - line.start_s) / max(1, width)
    most = int(CUE_MAX_S / per_col) if per_col > 0 else width       # columns one cue may hold
    blocks: list[list[str]] = []
    for word in words:
        lines = blocks[-1] if blocks else None
        if lines is not None and columns(" ".join(lines)) + 1 + columns(word) <= most:
            if columns(lines[-1]) + 1 + columns(word) <= LINE_CHARS:
                lines[-1] = f"{lines[-1]} {word}"
                continue
            if len(lines) < CUE_LINES:
                lines.append(word)
                continue
        blocks.append([word])
    cues, t = [], line.start_s
    for block in blocks:
        end = min(line.end_s, t + per_col * (columns(" ".join(block)) + 1))
        cues.append(Cue(round(t, 3), round(end, 3), "\n".join(block)))
        t = end
    return cues


def _pieces(word: str) -> list[str]:
    """A word that is wider than a line, in pieces that fit."""
    out = [""]
    for ch in word:
        if columns(out[-1] + ch) > LINE_CHARS:
            out.append("")
        out[-1] += ch
    return [p for p in out if p]


def _without_overlaps(cues: list[Cue]) -> list[Cue]:
    """Each cue ends where the next starts; a cue that starts within 0.5 s of the one before (too
    soon to show them apart) is said in that one: a sound that runs on past it follows it, one
    that does not joins its text."""
    out: list[Cue] = []
    for cue in cues:
        if out and cue.start_s < out[-1].end_s:
            prev = out[-1]
            if cue.start_s - prev.start_s >= 0.5:            # the earlier one ends where this one starts
                out[-1] = Cue(prev.start_s, cue.start_s, prev.text)
            elif cue.end_s - prev.end_s >= CUE_MIN_S:        # the later one waits for it
                cue = Cue(prev.end_s, cue.end_s, cue.text)
            else:                                            # one cue says both
                out[-1] = Cue(prev.start_s, max(prev.end_s, cue.end_s), _joined(prev.text, cue.text))
                continue
        out.append(cue)
    return out


def _joined(text: str, more: str) -> str:
    """Two cues' texts in one cue, on two lines where they fit (a sound tag beside the words)."""
    lines, extra = text.split("\n"), more.split("\n")
    if len(lines) + len(extra) <= CUE_LINES:
        return "\n".join(lines + extra)
    if len(extra) == 1 and columns(lines[-1]) + 1 + columns(extra[0]) <= LINE_CHARS:
        return "\n".join(lines[:-1] + [f"{lines[-1]} {extra[0]}"])
    if len(extra) == 1 and columns(lines[0]) + 1 + columns(extra[0]) <= LINE_CHARS:
        return "\n".join([f"{extra[0]} {lines[0]}"] + lines[1:])
    return "\n".join(lines + extra)


# --- reading ------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SoundCue:
    """A sound a caption file marks, as a label: the event tag and the cue's times."""

    label: str
    start_s: float
    end_s: float
    where: str                  # file:line of the (first) cue


@dataclass(frozen=True)
class CaptionSounds:
    """What a caption file says about sounds: the labels, and what was left out."""

    sounds: tuple[SoundCue, ...]
    speech_cues: int            # cues of words alone
    other: dict[str, int]       # other bracketed text as written (lower case) → cues


def read(path: Path) -> list[tuple[str, Cue]]:
    """A WebVTT (webvtt-py) or SRT (srt) file's cues, each with its `file:line`; CaptionError
    naming the line and the reason for a file or cue that cannot be read."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise CaptionError(f"{path}: cannot read ({exc})") from None
    cues = _read_vtt(path, text) if path.suffix.lower() == ".vtt" else _read_srt(path, text)
    timing_lines = [n for n, line in enumerate(text.splitlines(), 1) if "-->" in line]
    where = ([f"{path}:{n}" for n in timing_lines] if len(timing_lines) == len(cues)
             else [f"{path}: cue {k}" for k in range(1, len(cues) + 1)])
    for w, cue in zip(where, cues):
        if cue.end_s < cue.start_s:
            raise CaptionError(f"{w}: the cue ends ({cue.end_s:.3f} s) before it starts ({cue.start_s:.3f} s)")
    return list(zip(where, cues))


def _read_vtt(path: Path, text: str) -> list[Cue]:
    import webvtt
    from webvtt.errors import MalformedCaptionError, MalformedFileError
    from webvtt.vtt import WebVTTCueBlock
    try:
        doc = webvtt.from_string(text, strict=True)
    except MalformedFileError:
        raise CaptionError(f"{path}:1: not WebVTT (its first line must be WEBVTT)") from None
    except MalformedCaptionError as exc:
        for n, line in enumerate(text.splitlines(), 1):
            if "-->" in line and not WebVTTCueBlock.STRICT_CUE_TIMINGS_PATTERN.match(line):
                raise CaptionError(f"{path}:{n}: cue timings {line.strip()[:60]!r} are not "
                                   "hh:mm:ss.ttt --> hh:mm:ss.ttt") from None
        raise CaptionError(f"{path}: malformed cue ({exc})") from None
    return [Cue(c.start_time.in_milliseconds() / 1000, c.end_time.in_milliseconds() / 1000, c.text)
            for c in doc.captions]


def _read_srt(path: Path, text: str) -> list[Cue]:
    import srt
    try:
        subs = list(srt.parse(text))
    except srt.SRTParseError as exc:
        line = text.count("\n", 0, exc.expected_start) + 1
        bad = text[exc.expected_start:exc.actual_start].strip().splitlines()
        raise CaptionError(f"{path}:{line}: not an SRT cue (index, hh:mm:ss,ttt --> hh:mm:ss,ttt, text): "
                           f"{(bad[0] if bad else text[exc.expected_start:][:60])[:60]!r}") from None
    except ValueError as exc:                   # a timestamp out of range
        raise CaptionError(f"{path}: {exc}") from None
    return [Cue(s.start.total_seconds(), s.end.total_seconds(), s.content) for s in subs]


def sounds(path: Path) -> CaptionSounds:
    """The sound labels of a caption file (the table above), touching cues of a label joined."""
    found: list[SoundCue] = []
    latest: dict[str, int] = {}                 # label → index in found of its latest label
    speech, other = 0, {}
    for where, cue in sorted(read(path), key=lambda wc: (wc[1].start_s, wc[1].end_s)):
        tags, rest = sound_tags(cue.text)
        for text in rest:
            other[text] = other.get(text, 0) + 1
        if not tags and not rest:
            speech += 1
        for tag in tags:
            last = found[latest[tag]] if tag in latest else None
            if last is not None and cue.start_s - last.end_s < TOUCHING_S:
                found[latest[tag]] = SoundCue(tag, last.start_s, max(last.end_s, cue.end_s), last.where)
            else:
                latest[tag] = len(found)
                found.append(SoundCue(tag, cue.start_s, cue.end_s, where))
    return CaptionSounds(tuple(found), speech, other)


def sound_tags(text: str) -> tuple[list[str], list[str]]:
    """The event tags a cue's text marks (the table above), and its other bracketed texts."""
    text = _MARKUP.sub("", text)
    tags, rest = ["BGM"] if any(sign in text for sign in MUSIC_SIGNS) else [], []
    for m in _BRACKETS.finditer(text):
        inner = " ".join((m.group(1) or m.group(2) or "").split())
        named = [t for t, form in SOUND_FORMS if form.search(inner)]
        tags += [t for t in named if t not in tags]
        if not named:
            rest.append(m.group(0).lower())
    return tags, rest
