"""Analysis parameters, identities (lineage) and the rows one analysis writes. Pure, no I/O."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

import laughtrack
import sensevoice_core
from laughtrack.events import Event, EventOptions
from sensevoice_core import ScanOptions, ScanResult, Transcript
from sensevoice_core.tags import EMOTIONS, EVENTS

# Window columns: the event and emotion tags a user queries by name.
EVENT_COLUMNS = {"Laughter": "p_laughter", "Applause": "p_applause", "Speech": "p_speech", "BGM": "p_bgm",
                 "Cry": "p_cry", "Cough": "p_cough", "Sneeze": "p_sneeze", "Breath": "p_breath",
                 "Event_UNK": "p_no_event"}
EMOTION_COLUMNS = {"HAPPY": "p_happy", "SAD": "p_sad", "ANGRY": "p_angry", "NEUTRAL": "p_neutral",
                   "FEARFUL": "p_fearful", "DISGUSTED": "p_disgusted", "SURPRISED": "p_surprised",
                   "EMO_UNKNOWN": "p_emo_unknown"}
assert set(EVENT_COLUMNS) <= set(EVENTS) and set(EMOTION_COLUMNS) <= set(EMOTIONS)


@dataclass(frozen=True)
class AnalysisParams:
    """Everything besides the audio and the model that changes an analysis' numbers."""

    window_s: float = 0.5    # tools/tune_events.py: 0.5/0.25 beat 1.0/0.5 and 1.0/0.25 on edge error
    hop_s: float = 0.25
    adaptive: bool = True    # odd windows only at transitions: same accuracy, ~half the model work (bench/RESULTS.md)
    language: str = "auto"
    use_itn: bool = True
    transcribe: bool = True
    events: EventOptions = field(default_factory=EventOptions)

    def validate(self) -> AnalysisParams:
        self.scan_options().validate()
        self.events.validate()
        return self

    def scan_options(self, batch_size: int = 64) -> ScanOptions:
        return ScanOptions(window_s=self.window_s, hop_s=self.hop_s, batch_size=batch_size,
                           language=self.language, use_itn=False, adaptive=self.adaptive)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def _code_version() -> str:
    """Package version plus a hash of the code that computes the numbers (changes re-analyse)."""
    h = hashlib.sha256()
    sources = sorted(Path(sensevoice_core.__file__).parent.glob("*.py"))
    here = Path(__file__).parent
    sources += [here / "analysis.py", here / "events.py", here / "density.py"]
    for p in sources:
        h.update(p.read_bytes())
    return f"{laughtrack.__version__}+{h.hexdigest()[:10]}"


CODE_VERSION = _code_version()


def analysis_id(sha256: str, stream_index: int, model_sha256: str, params: AnalysisParams,
                code_version: str = CODE_VERSION, backend: str = "torch") -> str:
    """The identity of one analysis: same bytes, stream, model, backend, parameters and code → same id."""
    key = json.dumps([sha256, stream_index, model_sha256, params.to_json(), code_version]
                     + ([backend] if backend != "torch" else []))
    return hashlib.sha256(key.encode()).hexdigest()[:20]


def video_id(sha256: str) -> str:
    """Videos are identified by content, so a renamed copy is the same video."""
    return sha256[:16]


def window_table(aid: str, scan: ScanResult) -> pa.Table:
    """The `windows` rows of one scan."""
    n = len(scan)
    cols: dict[str, object] = {
        "analysis_id": pa.array([aid] * n, pa.string()),
        "start_s": scan.start_s, "end_s": scan.end_s,
        "event": scan.tags("event"), "emotion": scan.tags("emotion"), "language": scan.tags("language"),
    }
    for tag, col in EVENT_COLUMNS.items():
        cols[col] = scan.prob("event", tag).astype(np.float32)
    for tag, col in EMOTION_COLUMNS.items():
        cols[col] = scan.prob("emotion", tag).astype(np.float32)
    lang = scan.probs["language"]
    cols["p_language"] = (lang.max(axis=1) if n else np.zeros(0)).astype(np.float32)
    cols["text"] = scan.text
    return pa.table(cols)


def event_table(aid: str, events: list[Event]) -> pa.Table:
    """The `events` rows."""
    return pa.table({
        "analysis_id": pa.array([aid] * len(events), pa.string()),
        "label": pa.array([e.label for e in events], pa.string()),
        "start_s": pa.array([e.start_s for e in events], pa.float64()),
        "end_s": pa.array([e.end_s for e in events], pa.float64()),
        "peak_p": pa.array([e.peak_p for e in events], pa.float32()),
        "mean_p": pa.array([e.mean_p for e in events], pa.float32()),
    })


def segment_table(aid: str, transcripts: list[Transcript]) -> pa.Table:
    """The `segments` rows: one per transcribed speech chunk."""
    return pa.table({
        "analysis_id": pa.array([aid] * len(transcripts), pa.string()),
        "start_s": pa.array([t.start_s for t in transcripts], pa.float64()),
        "end_s": pa.array([t.end_s for t in transcripts], pa.float64()),
        "language": pa.array([t.language for t in transcripts], pa.string()),
        "emotion": pa.array([t.emotion for t in transcripts], pa.string()),
        "event": pa.array([t.event for t in transcripts], pa.string()),
        "raw_text": pa.array([t.raw_text for t in transcripts], pa.string()),
        "text": pa.array([t.text for t in transcripts], pa.string()),
        "tokens_json": pa.array([json.dumps([[k.text, k.start_s, k.end_s] for k in t.tokens])
                                 for t in transcripts], pa.string()),
    })


def token_table(aid: str, transcripts: list[Transcript]) -> pa.Table:
    """The `tokens` rows: every emitted text token with its time (sentencepiece ▁ shown as a space)."""
    tokens = [k for t in transcripts for k in t.tokens]
    return pa.table({
        "analysis_id": pa.array([aid] * len(tokens), pa.string()),
        "start_s": pa.array([k.start_s for k in tokens], pa.float64()),
        "end_s": pa.array([k.end_s for k in tokens], pa.float64()),
        "piece": pa.array([k.text for k in tokens], pa.string()),
        "text": pa.array([k.text.replace("\u2581", " ") for k in tokens], pa.string()),
    })


def rows_table(rows: list[dict], schema: pa.Schema, **constant) -> pa.Table:
    """Arrow table from row dicts plus constant columns (e.g. analysis_id)."""
    return pa.Table.from_pylist([dict(r, **constant) for r in rows], schema=schema)


MINUTE_DENSITY_SCHEMA = pa.schema([
    ("analysis_id", pa.string()), ("video_id", pa.string()), ("stream_index", pa.int32()),
    ("minute", pa.int32()), ("laughter_s", pa.float64()), ("applause_s", pa.float64()),
    ("laughter_count", pa.int32()), ("applause_count", pa.int32()), ("speech_s", pa.float64()),
    ("covered_s", pa.float64())])
MINUTE_EVENTS_SCHEMA = pa.schema([
    ("analysis_id", pa.string()), ("minute", pa.int32()), ("label", pa.string()),
    ("seconds", pa.float64()), ("count", pa.int32())])


def config_key(model_sha256: str, params: AnalysisParams, code_version: str = CODE_VERSION) -> str:
    """What, besides the content, decides an analysis: model, parameters, code (for run keys)."""
    return hashlib.sha256(json.dumps([model_sha256, params.to_json(), code_version]).encode()).hexdigest()[:16]
