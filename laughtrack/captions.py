"""Captions: the rich transcript written for viewers, and caption files read back as sound labels.

**Writing** (`laughtrack export --captions`): speech in cues of at most two lines of at most 42
columns (a wide CJK character takes two) and at most 7 s; each sound in capitals (`[LAUGHTER]`,
`[APPLAUSE]`, `[MUSIC]`, …) as deaf and hard-of-hearing captioning marks them: a cue of its own in
the silence it fills (at least 1 s where the silence allows), or, under the words, a tag on the cue
it falls in; the words are never cut for a sound. In time order, never overlapping. `laughtrack
synth` writes its truth with each sound at its exact times, over the words where it is (WebVTT
allows overlapping cues), so that read back as labels they are the truth. webvtt-py writes WebVTT,
srt writes SRT.

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
from laughtrack.transcript import NAMES, RichTranscript, SpeechLine

FORMATS = ("vtt", "srt")
LINE_CHARS = 42             # columns per caption line (the broadcasters' usual limit)
CUE_LINES = 2               # lines per cue
CUE_MAX_S = 7.0             # a cue longer than this is split
CUE_MIN_S = 1.0             # a sound cue shorter than this is lengthened (into silence only)
SOUND_MIN_S = 0.5           # a silence shorter than this holds no sound cue: the sound tags the words instead
SOUND_CUES = {tag: f"[{NAMES[tag].upper()}]" for tag in ("Laughter", "Applause", "BGM", "Cry", "Cough", "Sneeze")}
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
    """The transcript as captions: speech cues, and each sound in the silences around them (a
    sound under the words is a tag on the cue it falls in), in time order, never overlapping."""
    cues = _speech_only(transcript)
    for item in transcript.sounds:
        if item.label in SOUND_CUES:
            cues = _with_sound(cues, item.start_s, item.end_s, SOUND_CUES[item.label])
    return cues


def truth_cues(transcript: RichTranscript) -> list[Cue]:
    """Captions of a known truth (`laughtrack synth`): speech cues, and each sound a cue at its exact
    times, overlapping the words where it does (WebVTT and SRT allow it), so that read back as labels
    they give the truth's times."""
    sounds = [cue for item in transcript.sounds if item.label in SOUND_CUES
              for cue in _sound_cues(item.start_s, item.end_s, SOUND_CUES[item.label])]
    return sorted(_speech_only(transcript) + sounds, key=lambda c: (c.start_s, c.end_s))


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


def _speech_only(transcript: RichTranscript) -> list[Cue]:
    """The speech lines' cues in time order, none overlapping: a cue ends where the next begins
    (one that begins with it is said after it)."""
    out: list[Cue] = []
    for c in sorted((cue for line in transcript.speech for cue in _speech_cues(line)), key=lambda c: c.start_s):
        if out and c.start_s < out[-1].end_s:
            prev = out[-1]
            if c.start_s > prev.start_s:
                out[-1] = Cue(prev.start_s, c.start_s, prev.text)
            else:
                c = Cue(prev.end_s, prev.end_s + (c.end_s - c.start_s), c.text)
        out.append(c)
    return out


def _sound_cues(start: float, end: float, text: str) -> list[Cue]:
    """A sound as cues of ≤ 7 s (a long applause says so again, rather than one cue for a minute)."""
    pieces = max(1, -(-(end - start) // CUE_MAX_S))
    step = (end - start) / pieces
    return [Cue(round(start + k * step, 3), round(start + (k + 1) * step, 3), text) for k in range(int(pieces))]


def _with_sound(cues: list[Cue], start: float, end: float, tag: str) -> list[Cue]:
    """`cues` with a sound: a cue of its own in each silence it fills (lengthened to CUE_MIN_S
    where the silence allows), else its tag on the cue it starts in (or the first it meets)."""
    end = max(end, start + CUE_MIN_S)
    free = [(a, b) for a, b in _gaps(cues, start, end) if b - a >= SOUND_MIN_S]
    if free:
        added = [cue for a, b in free for cue in _sound_cues(a, b, tag)]
        return sorted(cues + added, key=lambda c: (c.start_s, c.end_s))
    under = [k for k, c in enumerate(cues) if c.start_s < end and c.end_s > start]
    if not under or any(tag in cues[k].text for k in under):
        return cues
    k = next((k for k in under if cues[k].start_s <= start < cues[k].end_s), under[0])
    return cues[:k] + _tagged(cues[k], tag, start) + cues[k + 1:]


def _gaps(cues: list[Cue], start: float, end: float) -> list[tuple[float, float]]:
    """The stretches of [start, end) that no cue covers (`cues` in time order)."""
    gaps, t = [], start
    for c in cues:
        if c.end_s <= t or c.start_s >= end:
            continue
        if c.start_s > t:
            gaps.append((t, c.start_s))
        t = max(t, c.end_s)
    return gaps + ([(t, end)] if t < end else [])


def _tagged(cue: Cue, tag: str, at: float) -> list[Cue]:
    """A cue that also says a sound: the tag on a line with room, or a line of its own; a full
    two-line cue is first split into its lines (its time shared by their widths), and the tag goes
    with the line said when the sound starts."""
    lines = cue.text.split("\n")
    for k, line in enumerate(lines):
        if columns(line) + 1 + columns(tag) <= LINE_CHARS:
            return [Cue(cue.start_s, cue.end_s, "\n".join(lines[:k] + [f"{line} {tag}"] + lines[k + 1:]))]
    if len(lines) < CUE_LINES:
        return [Cue(cue.start_s, cue.end_s, "\n".join(lines + [tag]))]
    middle = round(cue.start_s + (cue.end_s - cue.start_s) * columns(lines[0]) / max(1, columns(cue.text)), 3)
    first, second = Cue(cue.start_s, middle, lines[0]), Cue(middle, cue.end_s, "\n".join(lines[1:]))
    if at < middle:
        return [Cue(first.start_s, first.end_s, f"{first.text}\n{tag}"), second]
    return [first] + _tagged(second, tag, at)


def _speech_cues(line: SpeechLine) -> list[Cue]:
    """A speech line's words packed into cues of ≤ 2 lines of ≤ 42 columns, each short enough to last
    ≤ 7 s at the line's pace (its time shared out by columns) and never longer. Text without spaces
    (Chinese, Japanese) breaks between characters."""
    width = columns(" ".join(line.words.split()))
    per_col = (line.end_s - line.start_s) / max(1, width)
    most = max(2, int(CUE_MAX_S / per_col)) if per_col > 0 else max(2, width)    # columns one cue may hold
    words = [piece for word in line.words.split() for piece in _pieces(word, min(LINE_CHARS, most))]
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
        end = min(line.end_s, t + per_col * (columns(" ".join(block)) + 1), t + CUE_MAX_S)
        cues.append(Cue(round(t, 3), round(end, 3), "\n".join(block)))
        t = end
    return cues


def _pieces(word: str, width: int) -> list[str]:
    """A word wider than `width` columns, in pieces that fit."""
    out = [""]
    for ch in word:
        if out[-1] and columns(out[-1] + ch) > width:
            out.append("")
        out[-1] += ch
    return [p for p in out if p]


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
