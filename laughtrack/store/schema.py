"""The results schema, declared once: every table, column, type, key and view, with its meaning.

The DDL, the Arrow schemas the rows are built with, the insert column lists and docs/schema.md
are all derived from TABLES and VIEWS below (`python -m laughtrack.store` rewrites the doc; a
test checks it is current). Migrations carry only the deltas between versions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import pyarrow as pa

SCHEMA_VERSION = 4
_ARROW = {"VARCHAR": pa.string(), "DOUBLE": pa.float64(), "REAL": pa.float32(), "INTEGER": pa.int32(),
          "BIGINT": pa.int64(), "TIMESTAMPTZ": pa.timestamp("us", tz="UTC")}


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: str       # DuckDB type
    doc: str


@dataclass(frozen=True)
class Table:
    name: str
    doc: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()
    unique: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def arrow_schema(self) -> pa.Schema:
        return pa.schema([(c.name, _ARROW[c.type]) for c in self.columns])

    def ddl(self, constraints: bool = True) -> str:
        """CREATE TABLE; `constraints=False` for catalogs without keys (DuckLake)."""
        cols = [f'"{c.name}" {c.type}' for c in self.columns]
        if constraints and self.primary_key:
            cols.append(f"PRIMARY KEY ({', '.join(self.primary_key)})")
        if constraints:
            cols += [f'UNIQUE ("{u}")' for u in self.unique]
        return f"CREATE TABLE {self.name} ({', '.join(cols)})"

    def arrow(self, columns: Mapping[str, Iterable]) -> pa.Table:
        """An Arrow table of exactly this table's columns, typed as declared."""
        if set(columns) != set(self.names):
            extra, missing = set(columns) - set(self.names), set(self.names) - set(columns)
            raise ValueError(f"{self.name}: rows do not fit the schema (extra {sorted(extra)}, "
                             f"missing {sorted(missing)})")
        return pa.table({c.name: pa.array(columns[c.name], _ARROW[c.type]) for c in self.columns})

    def rows(self, rows: Iterable[Mapping]) -> pa.Table:
        """An Arrow table from row mappings, each with exactly this table's columns."""
        rows = list(rows)
        return self.arrow({name: [r[name] for r in rows] for name in self.names} if rows else
                          {name: [] for name in self.names})


@dataclass(frozen=True, slots=True)
class View:
    name: str
    doc: str
    sql: str
    columns: tuple[tuple[str, str], ...]    # (name, meaning), in the order the SQL gives them

    def ddl(self) -> str:
        return f"CREATE OR REPLACE VIEW {self.name} AS {self.sql}"


def _cols(*spec: tuple[str, str, str]) -> tuple[Column, ...]:
    return tuple(Column(*c) for c in spec)


LOCKS = 16   # write locks: writers of one video share one, writers of different videos mostly do not
LOCK_TABLES = tuple(f"write_lock_{i:02d}" for i in range(LOCKS))
LOCK_DOC = (f"`write_lock_00` … `write_lock_{LOCKS - 1:02d}`: one row each. A write transaction first updates the "
            "lock of its video (chosen by a hash of the video id), so two writers of one video conflict and one "
            "retries, then finds the other's rows: each analysis is stored once although DuckLake has no UNIQUE "
            "constraint, while writers of different videos seldom meet.")


def lock_table(video_id: str) -> str:
    """The write lock table of a video."""
    return LOCK_TABLES[int(hashlib.sha256(video_id.encode()).hexdigest()[:8], 16) % LOCKS]


V, D, R, I, B, T = "VARCHAR", "DOUBLE", "REAL", "INTEGER", "BIGINT", "TIMESTAMPTZ"
_ANALYSIS, _VIDEO, _STREAM = ("analysis_id", V, "the analysis"), ("video_id", V, "the video"), \
    ("stream_index", I, "the audio stream")
# Window columns: the event and emotion tags a user queries by name (tag → column).
EVENT_COLUMNS = {"Laughter": "p_laughter", "Applause": "p_applause", "Speech": "p_speech", "BGM": "p_bgm",
                 "Cry": "p_cry", "Cough": "p_cough", "Sneeze": "p_sneeze", "Breath": "p_breath",
                 "Event_UNK": "p_no_event"}
EMOTION_COLUMNS = {"HAPPY": "p_happy", "SAD": "p_sad", "ANGRY": "p_angry", "NEUTRAL": "p_neutral",
                   "FEARFUL": "p_fearful", "DISGUSTED": "p_disgusted", "SURPRISED": "p_surprised",
                   "EMO_UNKNOWN": "p_emo_unknown"}

TABLES: dict[str, Table] = {t.name: t for t in (
    Table("schema_version", "", _cols(
        ("version", I, "schema version applied (forward migrations only)"),
        ("applied_at", T, "when it was applied"))),
    *(Table(lock, "" if i else LOCK_DOC, _cols(("writes", B, "write transactions committed under this lock")))
      for i, lock in enumerate(LOCK_TABLES)),
    Table("videos", "One row per distinct content (sha256): the same bytes under another name are the same video.",
          _cols(("video_id", V, "first 16 hex digits of `sha256`"),
                ("path", V, "the path it was first seen under"),
                ("sha256", V, "sha256 of the file's bytes"),
                ("size_bytes", B, "file size"),
                ("container", V, "container format as probed (e.g. `mov,mp4,m4a,3gp,3g2,mj2`)"),
                ("duration_s", D, "container duration"),
                ("first_seen_at", T, "when laughtrack first saw it")),
          primary_key=("video_id",), unique=("sha256",)),
    Table("video_paths", "", _cols(
        _VIDEO, ("path", V, "a name the video was seen under (renamed copies add rows here, not analyses)"),
        ("seen_at", T, "when")), primary_key=("video_id", "path")),
    Table("audio_streams", "", _cols(
        _VIDEO, ("stream_index", I, "audio stream number (0 = first audio stream, ffmpeg's `0:a:N`)"),
        ("codec", V, "codec name"), ("channels", I, "channel count"), ("sample_rate", I, "sample rate in Hz"),
        ("duration_s", D, "stream duration when the container states it"),
        ("language_tag", V, "the container's language tag, if any"),
        ("start_s", D, "where the stream starts in the video: a late start (and any gap) is padded with silence, "
                       "so every time laughtrack stores is the video's time")),
        primary_key=("video_id", "stream_index")),
    Table("analyses", "One row per (video, stream, configuration); a new model, parameter set, code version or "
                      "backend adds rows, old ones stay.", _cols(
        ("analysis_id", V, "hash of content sha256, stream and `config_key`"),
        _VIDEO, _STREAM,
        ("model_id", V, "what the user asked for: a dir, a hub id or `fixture`"),
        ("model_sha256", V, "sha256 of the model dir's manifest (or of `model.pt`)"),
        ("params_json", V, "window/hop seconds, language, event thresholds, … as JSON"),
        ("code_version", V, "laughtrack version + hash of the code that computes the numbers"),
        ("device", V, "how the numbers were computed: device, backend, precision (and batch on int8), "
                      "e.g. `cpu onnx-int8 fp32 batch 64`"),
        ("duration_s", D, "length of the decoded audio stream"),
        ("started_at", T, "when the analysis started"),
        ("finished_at", T, "when its rows were committed"),
        ("status", V, "`done` (rows are written in one transaction, so there is no partial status)"),
        ("config_key", V, "hash of everything besides the content that decides the numbers: model sha256, "
                          "parameters, code version, backend, precision, int8 batch")),
        primary_key=("analysis_id",)),
    Table("windows", "One row per scan window, covering the whole stream.", _cols(
        _ANALYSIS, ("start_s", D, "window start"), ("end_s", D, "window end"),
        ("event", V, "most probable event tag (`Speech`, `Laughter`, `Applause`, `BGM`, …, `Event_UNK` = none)"),
        ("emotion", V, "most probable emotion tag"),
        ("language", V, "most probable language tag (`nospeech` when none)"),
        *((col, R, f"P({tag})" + (" among the event tags" if tag == "Laughter" else ""))
          for tag, col in EVENT_COLUMNS.items() if col != "p_no_event"),
        ("p_no_event", R, "P(Event_UNK)"),
        *((col, R, f"P({tag})" + (" among the emotion tags" if tag == "HAPPY" else ""))
          for tag, col in EMOTION_COLUMNS.items()),
        ("p_language", R, "probability of the most probable language"),
        ("text", V, "greedy text the model emitted for the window"))),
    Table("segments", "Transcribed speech chunks (≤ 15 s each).", _cols(
        _ANALYSIS, ("start_s", D, "chunk start"), ("end_s", D, "chunk end"),
        ("language", V, "language tag the model gave the chunk"), ("emotion", V, "emotion tag"),
        ("event", V, "event tag"),
        ("raw_text", V, "rich text as funasr returns it (`<|en|><|NEUTRAL|><|Speech|><|withitn|>…`)"),
        ("text", V, "display text, identical to funasr's `rich_transcription_postprocess`"),
        ("tokens_json", V, "`[[piece, start_s, end_s], …]`"))),
    Table("tokens", "", _cols(
        _ANALYSIS, ("start_s", D, "token start"), ("end_s", D, "token end"),
        ("piece", V, "sentencepiece piece as emitted"), ("text", V, "the piece with `▁` shown as a space"))),
    Table("events", "", _cols(
        _ANALYSIS, ("label", V, "event tag (`Laughter`, `Applause`, `Speech`, …)"),
        ("start_s", D, "start"), ("end_s", D, "end"),
        ("peak_p", R, "highest per-slot probability inside the event"),
        ("mean_p", R, "time-weighted mean probability inside the event"))),
    Table("minute_density", "Minute m covers [60·m, 60·m + 60) s; the last minute may be shorter. "
                            "Every minute has a row.", _cols(
        _ANALYSIS, _VIDEO, _STREAM, ("minute", I, "minute number from 0"),
        ("laughter_s", D, "seconds of laughter events inside the minute"),
        ("applause_s", D, "seconds of applause events inside the minute"),
        ("laughter_count", I, "laughter events that start in the minute"),
        ("applause_count", I, "applause events that start in the minute"),
        ("speech_s", D, "seconds of speech events inside the minute"),
        ("covered_s", D, "seconds of the minute that were scanned (the whole minute; less for the last)"))),
    Table("minute_events", "The same binning for every event label.", _cols(
        _ANALYSIS, ("minute", I, "minute number"), ("label", V, "event tag"),
        ("seconds", D, "seconds of that label inside the minute"),
        ("count", I, "events of that label starting in the minute"))),
    Table("event_sets", "Named event-detection parameter sets (`laughtrack tune --save NAME`; "
                        "`--events NAME` uses the newest row of a name).", _cols(
        ("name", V, "the set's name"),
        ("options_json", V, "the event options as JSON: name, default rule and per-label rules (on, off, edge, "
                            "min_duration_s, merge_gap_s)"),
        ("source", V, "the labels it was tuned on"),
        ("f1_before", D, "event-based F1 (mean over labels) of the options it started from, on `source`"),
        ("f1_after", D, "the same with this set"),
        ("saved_at", T, "when"))),
    Table("failures", "", _cols(
        ("path", V, "the file as given"), ("sha256", V, "its content hash when it could be read"),
        ("stream_index", I, "the stream, when the failure was per stream"),
        ("stage", V, "`expand`, `probe`, `extract`, `scan`, `transcribe` or `store`"),
        ("error_type", V, "exception class"), ("message", V, "one line: the file and the reason"),
        ("at", T, "when"),
        ("resolved_at", T, "when a later run analysed the file (that stream); NULL while the failure stands. "
                           "Only the file's own faults are rows: a full disk, a corrupt database or an interrupted "
                           "run are not"))),
)}
RESULT_TABLES = ("windows", "segments", "tokens", "events", "minute_density", "minute_events")  # per analysis

_SEE = "see `analyses`"
VIEWS: tuple[View, ...] = (
    View("latest_analyses", "The newest `done` analysis of each (video, stream); same columns as `analyses`.",
         "SELECT * FROM analyses WHERE status = 'done' QUALIFY row_number() OVER "
         "(PARTITION BY video_id, stream_index ORDER BY finished_at DESC, analysis_id) = 1",
         tuple((c.name, _SEE) for c in TABLES["analyses"].columns)),
    View("engagement", "One row per video stream, from its latest analysis.", """
        WITH m AS (
            SELECT analysis_id, sum(laughter_s) AS laughter_s, sum(applause_s) AS applause_s,
                   CAST(sum(laughter_count) AS BIGINT) AS laughs,
                   CAST(sum(applause_count) AS BIGINT) AS applause_bursts,
                   sum(speech_s) AS speech_s, sum(covered_s) AS covered_s
            FROM minute_density GROUP BY analysis_id)
        SELECT a.video_id, v.path, a.stream_index, a.analysis_id, a.model_id, a.duration_s,
               m.laughter_s, m.applause_s, m.laughs, m.applause_bursts, m.speech_s,
               m.laughs / nullif(a.duration_s / 60, 0) AS laughs_per_min,
               m.applause_bursts / nullif(a.duration_s / 60, 0) AS applause_per_min,
               100 * (m.laughter_s + m.applause_s) / nullif(m.covered_s, 0) AS engagement_score,
               m.covered_s / nullif(a.duration_s, 0) AS coverage
        FROM latest_analyses a JOIN videos v USING (video_id) JOIN m USING (analysis_id)""", (
        ("video_id", "the video"), ("path", "first path it was seen under"), ("stream_index", "the audio stream"),
        ("analysis_id", "the latest analysis"), ("model_id", "its model"), ("duration_s", "stream length"),
        ("laughter_s", "total laughter seconds"), ("applause_s", "total applause seconds"),
        ("laughs", "number of laughter events"), ("applause_bursts", "number of applause events"),
        ("speech_s", "total speech seconds"), ("laughs_per_min", "`laughs / (duration_s / 60)`"),
        ("applause_per_min", "`applause_bursts / (duration_s / 60)`"),
        ("engagement_score", "`100 × (laughter_s + applause_s) / covered seconds`: percent of the time with "
                             "laughter or applause"),
        ("coverage", "scanned seconds / `duration_s` (1.0: every second scanned)"))),
    View("top_moments", "Laughter and applause events of the latest analyses, ranked per analysis by "
                        "`seconds × mean_p`.", """
        SELECT a.video_id, a.stream_index, e.analysis_id, e.label, e.start_s, e.end_s,
               e.end_s - e.start_s AS seconds, e.peak_p, e.mean_p,
               row_number() OVER (PARTITION BY e.analysis_id ORDER BY (e.end_s - e.start_s) * e.mean_p DESC,
                                  e.start_s) AS rank
        FROM events e JOIN latest_analyses a USING (analysis_id)
        WHERE e.label IN ('Laughter', 'Applause')""", (
        ("video_id", "the video"), ("stream_index", "the audio stream"), ("analysis_id", "the analysis"),
        ("label", "`Laughter` or `Applause`"), ("start_s", "start"), ("end_s", "end"), ("seconds", "length"),
        ("peak_p", "peak probability"), ("mean_p", "mean probability"),
        ("rank", "1 = the strongest moment of that analysis"))),
    View("laugh_context", "What was said in the 10 s before each laughter onset (from `tokens`).", """
        SELECT a.video_id, a.stream_index, e.analysis_id, e.start_s AS laugh_start_s, e.end_s AS laugh_end_s,
               e.peak_p, trim(coalesce(string_agg(t.text, '' ORDER BY t.start_s), '')) AS said_before
        FROM events e JOIN latest_analyses a USING (analysis_id)
        LEFT JOIN tokens t ON t.analysis_id = e.analysis_id
             AND t.end_s > e.start_s - 10 AND t.start_s < e.start_s
        WHERE e.label = 'Laughter'
        GROUP BY ALL""", (
        ("video_id", "the video"), ("stream_index", "the audio stream"), ("analysis_id", "the analysis"),
        ("laugh_start_s", "laughter onset"), ("laugh_end_s", "laughter end"),
        ("peak_p", "peak probability of the laughter"),
        ("said_before", "transcript text of the tokens overlapping the 10 s before the onset"))),
)

# Forward migrations from each older version: the deltas only (a fresh database gets the DDL above).
LOCK_ROWS = tuple(f"INSERT INTO {lock} VALUES (0)" for lock in LOCK_TABLES)
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: ("ALTER TABLE analyses ADD COLUMN config_key VARCHAR",       # v1 → v2: one identity, and
        *(f"CREATE TABLE write_lock_{i:02d} (writes BIGINT)" for i in range(16)),   # write locks
        *(f"INSERT INTO write_lock_{i:02d} VALUES (0)" for i in range(16))),
    2: (TABLES["event_sets"].ddl(),),                                # v2 → v3: tuned event sets
    3: ("ALTER TABLE audio_streams ADD COLUMN start_s DOUBLE",       # v3 → v4: streams in the video's time,
        "ALTER TABLE failures ADD COLUMN resolved_at TIMESTAMPTZ"),   # failures closed by a later success
}


def create_statements(constraints: bool = True) -> list[str]:
    """Everything a fresh database needs, tables first (schema_version first of all)."""
    return [t.ddl(constraints) for t in TABLES.values()] + list(LOCK_ROWS) + [v.ddl() for v in VIEWS]


def markdown() -> str:
    """docs/schema.md, from the declarations above."""
    out = [_DOC_HEAD]
    for table in TABLES.values():
        if table.name in LOCK_TABLES[1:]:
            continue                      # one section for the family
        out += [f"## `{table.name}`", *([table.doc, ""] if table.doc else []), "| column | meaning |", "|---|---|"]
        out += [f"| `{c.name}` | {c.doc} |" for c in table.columns] + [""]
    for view in VIEWS:
        out += [f"## `{view.name}` (view)", view.doc, "", "| column | meaning |", "|---|---|"]
        out += [f"| `{name}` | {doc} |" for name, doc in view.columns] + [""]
    return "\n".join(out)


_DOC_HEAD = """# The laughtrack results database

One DuckDB file (`--db`, `$LAUGHTRACK_DB`, default `./laughtrack.duckdb`). Times are seconds from
the start of the video (an audio stream that starts late is padded with silence, so its times are
the video's too); probabilities are the model's softmax within one tag family.
Query it with `laughtrack query` (read-only, external file access disabled) or any DuckDB client
while no analysis is writing. Every result row leads to its `analyses` row, which records the
model, its sha256, the parameters, the code version and the backend that produced it.

This page is generated from `laughtrack/store/schema.py` (`python -m laughtrack.store`).
"""
