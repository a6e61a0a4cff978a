"""Labelled media: reading the label files people have into one typed form.

- CSV (DESIGN.md "Evaluation on labelled media"): `path,label,start_s,end_s`, paths relative to the
  CSV; many media files in one file.
- Audacity label tracks (`start<TAB>end<TAB>label`, File → Export → Labels), and
- Praat TextGrids (long, short or UTF-16; interval tiers; read with praatio): one file per media
  file, beside it with the same stem (`talk.mp4` + `talk.txt` or `talk.TextGrid`).
- Captions, WebVTT or SRT, beside their media (`talk.vtt`, `talk.en.srt`, `talk.captions.vtt`): their
  sound cues (`(Laughter)`, `[APPLAUSE]`, `♪`, …) by the table in laughtrack/captions.py. Their
  times are the captioner's, coarse: the set is marked `coarse` and eval widens its collar.

Label names are folded to the model's event tags (`laugh`, `laughter`, `Laughter` → `Laughter`);
labels that name none of the scored events are counted and left out. A fault is a LabelError
naming the file, the line and the reason.
"""

from __future__ import annotations

import csv
import glob
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from laughtrack.errors import LaughtrackError
from laughtrack.paths import MEDIA_SUFFIXES

SCORED = ("Laughter", "Applause", "Speech", "BGM")
ALIASES = {"laughter": "Laughter", "laugh": "Laughter", "laughs": "Laughter", "laughing": "Laughter",
           "applause": "Applause", "clapping": "Applause", "clap": "Applause", "claps": "Applause",
           "speech": "Speech", "talk": "Speech", "speaking": "Speech", "music": "BGM", "bgm": "BGM"}
CAPTIONS = (".vtt", ".srt")
CSV_COLUMNS = ("path", "label", "start_s", "end_s")


class LabelError(LaughtrackError):
    """A label file that cannot be read, or a row in it that makes no sense."""


@dataclass(frozen=True, slots=True)
class Label:
    """One labelled stretch of one media file, in seconds."""

    label: str          # an event tag: Laughter, Applause, Speech
    start_s: float
    end_s: float


@dataclass
class LabelSet:
    """Labels per media file (absolute paths), and what was left out."""

    source: str
    files: dict[str, list[Label]] = field(default_factory=dict)
    ignored: Counter = field(default_factory=Counter)    # label name as written → rows left out
    captions: list[str] = field(default_factory=list)    # caption files read (their times are coarse)
    speech_cues: int = 0                                 # caption cues of words alone, left out

    @property
    def coarse(self) -> bool:
        """Some labels come from captions: their times are within a second or two, not exact."""
        return bool(self.captions)

    def add(self, media: Path, name: str, start_s: float, end_s: float, where: str) -> None:
        if not 0 <= start_s <= end_s:
            raise LabelError(f"{where}: start {start_s} and end {end_s} must satisfy 0 <= start <= end")
        self.files.setdefault(str(media.resolve()), [])
        tag = canonical(name)
        if tag is None:
            self.ignored[name] += 1
        elif end_s > start_s:               # a point label marks no time
            self.files[str(media.resolve())].append(Label(tag, start_s, end_s))

    @property
    def labels(self) -> tuple[str, ...]:
        """The scored labels that occur (in SCORED order)."""
        seen = {lab.label for labels in self.files.values() for lab in labels}
        return tuple(t for t in SCORED if t in seen)


def canonical(name: str) -> str | None:
    """The event tag a label name means, or None."""
    return ALIASES.get(name.strip().lower())


def read(paths: list[Path]) -> LabelSet:
    """Read one CSV, or Audacity/TextGrid files each beside its media file."""
    paths = [Path(p) for p in paths]
    out = LabelSet(", ".join(str(p) for p in paths))
    for path in paths:
        if not path.is_file():
            raise LabelError(f"{path}: no such label file")
        suffix = path.suffix.lower()
        if suffix == ".csv":
            _read_csv(path, out)
        elif suffix == ".textgrid":
            _read_textgrid(path, media_beside(path), out)
        elif suffix in (".txt", ".tsv", ".labels"):
            _read_audacity(path, media_beside(path), out)
        elif suffix in CAPTIONS:
            _read_captions(path, media_beside(path, captions=True), out)
        else:
            raise LabelError(f"{path}: unknown label format; use .csv ({','.join(CSV_COLUMNS)}), "
                             "an Audacity label track (.txt), a Praat .TextGrid, or captions (.vtt, .srt)")
    if not out.files:
        raise LabelError(f"{out.source}: no labelled media")
    return out


def media_beside(label_file: Path, captions: bool = False) -> Path:
    """The media file a per-file label track belongs to: same folder, same stem. Captions also
    name a language or a kind before their suffix (`talk.en.vtt`, `talk.captions.vtt` → `talk.*`)."""
    stems = [label_file.stem]
    if captions and "." in label_file.stem:
        stems.append(label_file.stem.rsplit(".", 1)[0])
    found = []
    for stem in stems:
        found = sorted(p for p in label_file.parent.glob(f"{glob.escape(stem)}.*")
                       if p.suffix.lower() in MEDIA_SUFFIXES and p.is_file())
        if found:
            break
    if not found:
        names, kinds = " or ".join(s + ".*" for s in stems), ", ".join(sorted(MEDIA_SUFFIXES))
        raise LabelError(f"{label_file}: no media file named {names} beside it (one of {kinds})")
    if len(found) > 1:
        raise LabelError(f"{label_file}: more than one media file named {stem}.*: "
                         + ", ".join(p.name for p in found))
    return found[0]


def _read_csv(path: Path, out: LabelSet) -> None:
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            missing = set(CSV_COLUMNS) - set(reader.fieldnames or ())
            if missing:
                raise LabelError(f"{path}: needs the columns {','.join(CSV_COLUMNS)} (missing {', '.join(sorted(missing))})")
            for row in reader:
                where = f"{path}:{reader.line_num}"
                if any(row.get(c) is None for c in CSV_COLUMNS):
                    raise LabelError(f"{where}: needs {len(CSV_COLUMNS)} values ({','.join(CSV_COLUMNS)})")
                media = path.parent / Path(row["path"]).expanduser()
                if not media.is_file():
                    raise LabelError(f"{where}: no media file {media}")
                out.add(media, row["label"], _seconds(row["start_s"], where), _seconds(row["end_s"], where), where)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise LabelError(f"{path}: cannot read ({exc})") from None


def _read_audacity(path: Path, media: Path, out: LabelSet) -> None:
    """start<TAB>end<TAB>label; `\\` lines carry frequency ranges (skipped); 1.2-era start<TAB>label."""
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise LabelError(f"{path}: cannot read ({exc})") from None
    out.files.setdefault(str(media.resolve()), [])
    for n, line in enumerate(lines, 1):
        if not line.strip() or line.startswith("\\"):
            continue
        cols = line.split("\t")
        where = f"{path}:{n}"
        if len(cols) == 2:
            start = end = _seconds(cols[0], where)
            name = cols[1]
        elif len(cols) >= 3:
            start, end, name = _seconds(cols[0], where), _seconds(cols[1], where), cols[2]
        else:
            raise LabelError(f"{where}: expected start<TAB>end<TAB>label, got {line[:60]!r}")
        out.add(media, name, start, end, where)


def _read_captions(path: Path, media: Path, out: LabelSet) -> None:
    """A caption file's sound cues as labels; its other cues counted (laughtrack/captions.py)."""
    from laughtrack import captions
    try:
        found = captions.sounds(path)
    except captions.CaptionError as exc:
        raise LabelError(str(exc)) from None
    if not found.sounds and not found.speech_cues and not found.other:
        raise LabelError(f"{path}: no cues (an empty caption file labels nothing)")
    out.files.setdefault(str(media.resolve()), [])
    out.captions.append(str(path))
    out.speech_cues += found.speech_cues
    out.ignored.update(found.other)
    for s in found.sounds:
        out.add(media, s.label, s.start_s, s.end_s, s.where)


def _read_textgrid(path: Path, media: Path, out: LabelSet) -> None:
    """Every interval tier: an interval's text is its label; a text that names no event takes the
    tier's name when that does (a tier called `laughter` with marks `x`). Empty intervals are gaps."""
    from praatio import textgrid
    try:
        grid = textgrid.openTextgrid(str(path), includeEmptyIntervals=False)
    except Exception as exc:    # noqa: BLE001 - praatio's parser fails on garbage with any error type
        # (IndexError, ValueError, its own PraatioException …): each is "not a TextGrid"
        raise LabelError(f"{path}: not a readable TextGrid ({exc})") from None
    out.files.setdefault(str(media.resolve()), [])
    for name in grid.tierNames:
        tier = grid.getTier(name)
        if not isinstance(tier, textgrid.IntervalTier):
            continue
        for start, end, text in tier.entries:
            label = text if canonical(text) or not canonical(name) else name
            out.add(media, label, float(start), float(end), f"{path}: tier {name!r} at {start:g} s")


def _seconds(text: str, where: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise LabelError(f"{where}: {text!r} is not a time in seconds") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise LabelError(f"{where}: {text!r} is not a time in seconds")
    return value
