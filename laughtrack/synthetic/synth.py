"""Synthetic audio with a known timeline: speech, laughter, applause and silence.

Pure numpy/scipy; deterministic for a given seed. Every segment draws from its own generator
seeded by (timeline seed, segment index), so editing one segment never changes another's audio.
The fixture model is trained on clips from here, and the tests and `laughtrack demo` analyse
media rendered from here against the truth computed here.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy.signal import butter, lfilter, sosfilt

from laughtrack.errors import TimelineError
from sensevoice_core.options import SAMPLE_RATE     # Hz

KINDS = ("speech", "laughter", "applause", "silence")
NOISE_FLOOR = 0.0015  # linear amplitude of the background hiss, about -56 dBFS
MAX_DURATION_S = 6 * 3600

# Syllables of the synthetic language: onset consonant class and vowel formants (Hz).
VOWELS = {"a": (800, 1200, 2500), "e": (500, 1900, 2600), "i": (300, 2300, 3000),
          "o": (500, 850, 2400), "u": (320, 800, 2300)}
SYLLABLES = ("ba", "ke", "si", "mo", "lu", "na", "te", "po")


@dataclass(frozen=True, slots=True)
class Segment:
    """One stretch of the timeline, in seconds."""

    start_s: float
    end_s: float
    kind: str

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass(frozen=True, slots=True)
class Timeline:
    """What happens when; gaps between segments are silence. Segments may overlap (laughter under
    speech, applause over laughter): overlapping sounds are mixed, and the truth counts each kind."""

    duration_s: float
    seed: int
    segments: tuple[Segment, ...]


def parse_timeline(data: dict, source: str = "timeline") -> Timeline:
    """Validate a timeline dict (DESIGN.md "Timeline format"); raise TimelineError on any fault."""
    try:
        duration = float(data["duration_s"])
        seed = int(data.get("seed", 0))
        raw_segments = data.get("segments", [])
    except (KeyError, TypeError, ValueError) as exc:
        raise TimelineError(f"{source}: needs a numeric 'duration_s' ({exc!r})") from None
    if not 0 < duration <= MAX_DURATION_S:
        raise TimelineError(f"{source}: duration_s must be in (0, {MAX_DURATION_S}], got {duration}")
    segments = []
    for i, seg in enumerate(raw_segments):
        try:
            s = Segment(float(seg["start_s"]), float(seg["end_s"]), str(seg["kind"]))
        except (KeyError, TypeError, ValueError):
            raise TimelineError(f"{source}: segment {i} needs start_s, end_s and kind") from None
        if s.kind not in KINDS:
            raise TimelineError(f"{source}: segment {i} has kind {s.kind!r}; use one of {KINDS}")
        if not 0 <= s.start_s < s.end_s <= duration:
            raise TimelineError(
                f"{source}: segment {i} [{s.start_s}, {s.end_s}] is empty or outside [0, {duration}]")
        segments.append(s)
    segments.sort(key=lambda s: s.start_s)
    return Timeline(duration, seed, tuple(segments))


def load_timeline(path: Path) -> Timeline:
    """Read and validate a timeline JSON file."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise TimelineError(f"{path}: cannot read timeline ({exc})") from None
    return parse_timeline(data, source=str(path))


def to_samples(seconds: float) -> int:
    """Seconds to a whole number of samples (round half up), so boundaries never drift."""
    return int(math.floor(seconds * SAMPLE_RATE + 0.5))


# --- Audio ------------------------------------------------------------------------------------

def render(timeline: Timeline) -> tuple[np.ndarray, list[tuple[float, float, str]]]:
    """Render the timeline to mono float32 at SAMPLE_RATE.

    Returns the audio and the spoken words as (start_s, end_s, word) for transcript checks.
    """
    n = to_samples(timeline.duration_s)
    rng = np.random.default_rng([timeline.seed, 0])
    audio = (rng.standard_normal(n) * NOISE_FLOOR).astype(np.float32)
    words: list[tuple[float, float, str]] = []
    for i, seg in enumerate(timeline.segments):
        a, b = to_samples(seg.start_s), to_samples(seg.end_s)
        seg_rng = np.random.default_rng([timeline.seed, i + 1])
        clip, clip_words = render_kind(seg.kind, b - a, seg_rng)
        audio[a:b] += clip
        words += [(seg.start_s + s, seg.start_s + e, w) for s, e, w in clip_words]
    np.clip(audio, -1.0, 1.0, out=audio)
    return audio, words


def render_kind(kind: str, n: int, rng: np.random.Generator):
    """n samples of one kind of sound, and the words spoken in it (speech only)."""
    if kind == "speech":
        return speech(n, rng)
    if kind == "laughter":
        return laughter(n, rng), []
    if kind == "applause":
        return applause(n, rng), []
    return np.zeros(n, np.float32), []


def _glottal(n: int, f0: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A band-limited pulse train following the pitch contour f0 (Hz per sample)."""
    phase = np.cumsum(f0 / SAMPLE_RATE)
    pulses = np.diff(np.floor(phase), prepend=0.0)
    source = lfilter([1.0], [1.0, -0.97], pulses)  # spectral tilt of the glottal flow
    return source + 0.02 * rng.standard_normal(n)


def _formants(x: np.ndarray, freqs, bandwidth: float = 90.0) -> np.ndarray:
    """Cascade of second-order resonators at the given formant frequencies."""
    y = x
    for f in freqs:
        r = math.exp(-math.pi * bandwidth / SAMPLE_RATE)
        theta = 2 * math.pi * f / SAMPLE_RATE
        y = lfilter([1 - r], [1.0, -2 * r * math.cos(theta), r * r], y)
    return y


def _bandpass(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    sos = butter(2, [lo, min(hi, SAMPLE_RATE / 2 - 100)], btype="band", fs=SAMPLE_RATE, output="sos")
    return sosfilt(sos, x)


def _normalise(x: np.ndarray, peak: float) -> np.ndarray:
    m = float(np.max(np.abs(x))) if x.size else 0.0
    return (x * (peak / m)).astype(np.float32) if m > 0 else x.astype(np.float32)


def syllable(name: str, f0: float, dur: int, rng: np.random.Generator) -> np.ndarray:
    """One consonant-vowel syllable of `dur` samples at pitch f0."""
    onset, vowel = name[0], name[1]
    t = np.arange(dur)
    contour = f0 * (1.0 + 0.08 * np.sin(np.pi * t / dur)) * (1 + 0.01 * rng.standard_normal())
    voiced = _formants(_glottal(dur, contour, rng), VOWELS[vowel])
    env = np.minimum(1.0, np.minimum(t / (0.02 * SAMPLE_RATE), (dur - t) / (0.03 * SAMPLE_RATE)))
    voiced = _normalise(voiced * env, 0.5)
    c = int(0.05 * SAMPLE_RATE)
    noise = rng.standard_normal(c)
    if onset in "bptk":      # plosive: short burst, a closure before the vowel
        burst = _bandpass(noise, {"b": 300, "p": 500, "t": 3000, "k": 1500}[onset], 6000)
        burst *= np.exp(-np.arange(c) / (0.008 * SAMPLE_RATE))
        voiced[:c] = voiced[:c] * np.linspace(0, 1, c) + _normalise(burst, 0.3)
    elif onset == "s":       # fricative: long high hiss
        c = int(0.09 * SAMPLE_RATE)
        hiss = _normalise(_bandpass(rng.standard_normal(c), 4000, 7800), 0.25)
        voiced = np.concatenate([hiss, voiced[: max(dur - c, 0)]])
    elif onset in "mn":      # nasal: low murmur
        murmur = _formants(_glottal(c, np.full(c, f0), rng), (250, 1000 if onset == "m" else 1700))
        voiced[:c] = _normalise(murmur, 0.3)
    elif onset == "l":       # liquid: formant glide into the vowel
        glide = _formants(_glottal(c, np.full(c, f0), rng), (350, 1100, 2700))
        voiced[:c] = 0.5 * voiced[:c] + _normalise(glide, 0.25)
    return voiced[:dur].astype(np.float32)


def speech(n: int, rng: np.random.Generator):
    """Words of 1-3 synthetic syllables at ~4 syllables/s, male-to-female pitch range."""
    out = np.zeros(n, np.float32)
    words = []
    f0 = float(rng.uniform(100, 190))
    pos = int(rng.uniform(0.0, 0.05) * SAMPLE_RATE)
    while pos < n - int(0.15 * SAMPLE_RATE):
        names = [SYLLABLES[i] for i in rng.integers(0, len(SYLLABLES), rng.integers(1, 4))]
        start = pos
        for k, name in enumerate(names):
            dur = int(rng.uniform(0.17, 0.26) * SAMPLE_RATE)
            dur = min(dur, n - pos)
            if dur < int(0.1 * SAMPLE_RATE):
                break
            pitch = f0 * (1.0 - 0.05 * k)
            out[pos:pos + dur] += syllable(name, pitch, dur, rng) * float(rng.uniform(0.6, 0.9))
            pos += dur
        else:
            words.append((start / SAMPLE_RATE, pos / SAMPLE_RATE, "".join(names)))
            pos += int(rng.uniform(0.06, 0.16) * SAMPLE_RATE)
            continue
        break
    return out, words


def laughter(n: int, rng: np.random.Generator) -> np.ndarray:
    """Voiced, breathy "ha" bursts at 4-6 Hz in runs of 3-8, pitch falling along each run."""
    out = np.zeros(n, np.float32)
    pos = 0
    while pos < n:
        rate = float(rng.uniform(4.0, 6.0))
        period = int(SAMPLE_RATE / rate)
        f0 = float(rng.uniform(230, 380))
        for k in range(int(rng.integers(3, 9))):
            if pos >= n:
                break
            dur = min(int(period * rng.uniform(0.55, 0.75)), n - pos)
            t = np.arange(dur)
            voiced = _formants(_glottal(dur, np.full(dur, f0 * (1 - 0.04 * k)), rng), VOWELS["a"], 150)
            breath = _bandpass(rng.standard_normal(dur), 800, 5000)
            env = np.sin(np.pi * t / dur) ** 1.5
            ha = _normalise(voiced, 0.6) + _normalise(breath, 0.35)
            out[pos:pos + dur] = (ha * env * rng.uniform(0.6, 1.0)).astype(np.float32)
            pos += min(period, n - pos)
        pos += int(rng.uniform(0.1, 0.35) * SAMPLE_RATE)
    return out


def applause(n: int, rng: np.random.Generator) -> np.ndarray:
    """Many hands: dense broadband claps (15-40/s) with fast exponential decays."""
    out = np.zeros(n + SAMPLE_RATE // 10, np.float32)
    rate = float(rng.uniform(15, 40))
    count = max(1, int(rng.poisson(rate * n / SAMPLE_RATE)))
    times = np.sort(rng.integers(0, max(n, 1), count))
    clap_len = int(0.04 * SAMPLE_RATE)
    t = np.arange(clap_len)
    for start in times:
        decay = np.exp(-t / (rng.uniform(0.003, 0.012) * SAMPLE_RATE))
        centre = rng.uniform(800, 3500)
        clap = _bandpass(rng.standard_normal(clap_len), centre * 0.5, centre * 2.2) * decay
        out[start:start + clap_len] += (clap * rng.uniform(0.2, 1.0)).astype(np.float32)
    out = out[:n]
    fade = np.minimum(1.0, np.minimum(np.arange(n) / (0.05 * SAMPLE_RATE), (n - np.arange(n)) / (0.1 * SAMPLE_RATE)))
    return _normalise(out * fade, 0.7)


def render_to(timeline: Timeline, out: Path) -> Path:
    """Render `timeline` to the media file `out`, its per-minute truth to `out.truth.json`, its
    labels to `out.labels.csv` (the `laughtrack eval` format) and its captions, the words and the
    sounds, to `out.captions.vtt` (a captioned set: `laughtrack eval out.captions.vtt`); return the
    truth's path."""
    from laughtrack import media
    out = Path(out)
    audio, words = render(timeline)
    media.write_media(audio, out)
    beside = (lambda ext: out.with_name(out.name + ext)) if out.suffix == "" else out.with_suffix
    truth = beside(".truth.json")
    truth.write_text(json.dumps([asdict(t) for t in per_minute_truth(timeline)], indent=1) + "\n")
    beside(".labels.csv").write_text(labels_csv(timeline, out.name))
    beside(".captions.vtt").write_text(captions_vtt(timeline, words), encoding="utf-8")
    return truth


def captions_vtt(timeline: Timeline, words: list[tuple[float, float, str]]) -> str:
    """The truth as captions (laughtrack/captions.py): each speech stretch's words, and a sound cue
    (`[LAUGHTER]`, `[APPLAUSE]`) at each laugh and applause."""
    from laughtrack import captions
    from laughtrack.labelled.labels import canonical
    from laughtrack.transcript import RichTranscript, SoundLine, SpeechLine
    spans = kind_spans(timeline)
    items: list = [SpeechLine(a / 1000, b / 1000, None, None, None,
                              " ".join(w for s, e, w in words if a / 1000 <= s < b / 1000))
                   for a, b in spans.get("speech", [])]
    items += [SoundLine(a / 1000, b / 1000, canonical(kind), 1.0, 1.0)
              for kind in ("laughter", "applause") for a, b in spans.get(kind, [])]
    return captions.render(captions.truth_cues(RichTranscript.ordered(items)), "vtt")


def labels_csv(timeline: Timeline, media_name: str) -> str:
    """The timeline as `path,label,start_s,end_s` rows (one per kind's event, silence left out)."""
    import csv
    import io
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["path", "label", "start_s", "end_s"])
    writer.writerows([media_name, kind, f"{a / 1000:.3f}", f"{b / 1000:.3f}"]
                     for a, kind, b in sorted((a, k, b) for k, spans in kind_spans(timeline).items() for a, b in spans))
    return out.getvalue()


# --- Truth ------------------------------------------------------------------------------------

def kind_spans(timeline: Timeline) -> dict[str, list[tuple[int, int]]]:
    """Per kind, the union of its segments in integer milliseconds: overlapping or touching
    segments of one kind are one event (kinds overlap each other freely)."""
    from laughtrack.density import union
    spans: dict[str, list[tuple[int, int]]] = {}
    for seg in timeline.segments:
        if seg.kind != "silence":
            spans.setdefault(seg.kind, []).append((round(seg.start_s * 1000), round(seg.end_s * 1000)))
    return {kind: union(own) for kind, own in spans.items()}


@dataclass(frozen=True, slots=True)
class TruthMinute:
    """One minute of a timeline's truth (`OUT.truth.json` holds a list of these)."""

    minute: int
    laughter_s: float
    applause_s: float
    speech_s: float
    laughter_count: int
    applause_count: int


def per_minute_truth(timeline: Timeline) -> list[TruthMinute]:
    """Per-minute seconds and onset counts of each kind on its own (a minute can hold 40 s of
    speech and 6 s of laughter at once), binned in integer milliseconds."""
    total_ms = round(timeline.duration_s * 1000)
    minutes = max(1, -(-total_ms // 60_000))
    seconds = {k: [0] * minutes for k in ("laughter", "applause", "speech")}      # ms per minute
    counts = {k: [0] * minutes for k in ("laughter", "applause", "speech")}
    for kind, a, b in ((k, a, b) for k, spans in kind_spans(timeline).items() for a, b in spans):
        counts[kind][a // 60_000] += 1
        for m in range(a // 60_000, (b - 1) // 60_000 + 1):
            seconds[kind][m] += min(b, (m + 1) * 60_000) - max(a, m * 60_000)
    return [TruthMinute(m, round(seconds["laughter"][m] / 1000, 3), round(seconds["applause"][m] / 1000, 3),
                        round(seconds["speech"][m] / 1000, 3), counts["laughter"][m], counts["applause"][m])
            for m in range(minutes)]


def read_truth(path: Path) -> list[TruthMinute]:
    """The per-minute truth `render_to` wrote."""
    return [TruthMinute(**row) for row in json.loads(Path(path).read_text())]
