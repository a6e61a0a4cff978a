"""Every read laughtrack makes of the results, each giving back typed records (records.py).

The user's own SQL (`laughtrack query`) is sql.py's: it is not a read of laughtrack's, and gives
back what the user asked for.
"""

from __future__ import annotations

import json
from dataclasses import fields

import numpy as np

from laughtrack.errors import StoreError
from laughtrack.events import EventOptions
from laughtrack.store import schema
from laughtrack.store.migrations import version
from laughtrack.store.records import (
    CollectionReport, EmotionMinute, Engagement, LanguageMinute, LanguageShare, MinuteDensity, MinuteSeconds,
    Moment, ReportTarget, StoredEvent, Summary, Timeline, TranscriptSegment, VideoReport, WindowProbs, rows_as,
)
from laughtrack.store.rows import DONE

ENGAGEMENT = ", ".join(f.name for f in fields(Engagement))
ENGAGEMENT_SQL = f"SELECT {ENGAGEMENT} FROM engagement WHERE analysis_id IN (SELECT unnest(?)) ORDER BY path, stream_index"
MINUTES_SQL = ("SELECT analysis_id, video_id, stream_index, minute, laughter_s, applause_s, laughter_count, "
               "applause_count, speech_s, covered_s FROM minute_density ")
DONE_SQL = "SELECT analysis_id FROM analyses WHERE status = ? AND analysis_id IN (SELECT unnest(?))"
DONE_CONTENTS_SQL = ("SELECT DISTINCT v.sha256 FROM videos v JOIN analyses a USING (video_id) "
                     "WHERE a.status = ? AND a.config_key = ?")
TARGETS_SQL = "SELECT video_id, stream_index, analysis_id FROM engagement ORDER BY video_id, stream_index"
DURATIONS_SQL = "SELECT analysis_id, duration_s FROM analyses WHERE analysis_id IN (SELECT unnest(?))"
EVENTS_SQL = "SELECT label, start_s, end_s, peak_p, mean_p FROM events WHERE analysis_id = ? ORDER BY start_s, label"
EVENT_SET_SQL = "SELECT options_json FROM event_sets WHERE name = ? ORDER BY saved_at DESC LIMIT 1"
FIND_VIDEO_SQL = ("SELECT DISTINCT video_id FROM latest_analyses WHERE starts_with(video_id, ?) "
                  "UNION SELECT DISTINCT p.video_id FROM video_paths p JOIN latest_analyses a USING (video_id) "
                  "WHERE p.path = ? ORDER BY 1 LIMIT 10")
TRANSCRIPT_SQL = ("SELECT start_s, end_s, language, emotion, event, raw_text, text, tokens_json FROM segments "
                  "WHERE analysis_id = ? ORDER BY start_s")
VIDEO_REPORT_SQL = {
    "summary": (Summary, f"SELECT {', '.join('e.' + n for n in ENGAGEMENT.split(', '))}, a.model_sha256, "
                         "a.params_json, a.code_version, a.device, a.finished_at FROM engagement e "
                         "JOIN analyses a USING (analysis_id) WHERE analysis_id = ?"),
    "languages": (LanguageShare, "SELECT language, sum(end_s - start_s) AS seconds FROM segments WHERE analysis_id = ? "
                                 "AND language IS NOT NULL GROUP BY language ORDER BY seconds DESC, language"),
    "minutes": (MinuteDensity, MINUTES_SQL + "WHERE analysis_id = ? ORDER BY minute"),
    "events": (StoredEvent, "SELECT label, start_s, end_s, peak_p, mean_p FROM events WHERE analysis_id = ? "
                            "ORDER BY start_s"),
    "emotions": (EmotionMinute, "SELECT CAST(floor(start_s / 60) AS INTEGER) AS minute, avg(p_happy) AS happy, "
                                "avg(p_sad) AS sad, avg(p_angry) AS angry, avg(p_neutral) AS neutral, "
                                "avg(p_surprised) AS surprised, avg(p_fearful) + avg(p_disgusted) AS other, "
                                "avg(p_emo_unknown) AS unknown FROM windows WHERE analysis_id = ? GROUP BY ALL "
                                "ORDER BY minute"),
    "languages_per_minute": (LanguageMinute, "SELECT CAST(floor(start_s / 60) AS INTEGER) AS minute, language, "
                                             "count(*) AS windows FROM windows WHERE analysis_id = ? "
                                             "AND event = 'Speech' GROUP BY ALL ORDER BY minute, language"),
    "moments": (Moment, "SELECT m.rank, m.label, m.start_s, m.end_s, m.seconds, m.peak_p, m.mean_p, "
                        "(SELECT trim(coalesce(string_agg(t.text, '' ORDER BY t.start_s), '')) FROM tokens t "
                        " WHERE t.analysis_id = m.analysis_id AND t.end_s > m.start_s - 10 AND t.start_s < m.start_s) "
                        "AS said_before FROM top_moments m WHERE m.analysis_id = ? AND m.rank <= 10 ORDER BY m.rank"),
}
TIMELINE_SQL = ("SELECT start_s, end_s, p_laughter, p_applause, p_speech FROM windows WHERE analysis_id = ? "
                "ORDER BY start_s")
LEADERBOARD_SQL = (f"SELECT {ENGAGEMENT} FROM engagement "
                   "ORDER BY engagement_score DESC NULLS LAST, video_id, stream_index")
COLLECTION_MINUTES_SQL = ("SELECT d.laughter_s, d.applause_s FROM minute_density d "
                          "JOIN latest_analyses a USING (analysis_id)")


class Reads:
    """The read methods of a store (sql.py's SqlStore provides `_reader` and `exists`)."""

    def event_set(self, name: str) -> EventOptions | None:
        """The event rules saved under `name` (the newest), or None; StoreError if they are unreadable."""
        if not self.exists():
            return None
        with self._reader() as con:
            if version(con) < 3:
                return None
            rows = con.execute(EVENT_SET_SQL, [name]).fetchall()
        if not rows:
            return None
        try:
            return EventOptions.from_dict(json.loads(rows[0][0]))
        except (ValueError, TypeError) as exc:
            raise StoreError(f"event parameter set {name!r} in {self.url} is unreadable ({exc})") from None

    def durations(self, analysis_ids: list[str]) -> dict[str, float]:
        """analysis_id → duration_s of these analyses (latest or not)."""
        with self._reader() as con:
            return dict(con.execute(DURATIONS_SQL, [analysis_ids]).fetchall())

    def events(self, analysis_id: str) -> list[StoredEvent]:
        """The timed events of an analysis, in time order."""
        with self._reader() as con:
            return rows_as(StoredEvent, con.execute(EVENTS_SQL, [analysis_id]))

    def window_probs(self, analysis_id: str, family: str = "event") -> WindowProbs:
        """An analysis' windows with every probability of one tag family (event or emotion), columnar."""
        columns = {"event": schema.EVENT_COLUMNS, "emotion": schema.EMOTION_COLUMNS}[family]
        with self._reader() as con:
            cur = con.execute(f"SELECT start_s, end_s, {', '.join(columns.values())} FROM windows "
                              "WHERE analysis_id = ? ORDER BY start_s, end_s", [analysis_id])
            names = [d[0] for d in cur.description]
            cols = np.asarray(cur.fetchall(), dtype=np.float64).reshape(-1, len(names)).T
        by_name = dict(zip(names, cols))
        return WindowProbs(by_name["start_s"], by_name["end_s"], {tag: by_name[col] for tag, col in columns.items()})

    def done_analyses(self, analysis_ids: list[str]) -> set[str]:
        """Which of these analyses are complete in the database."""
        if not analysis_ids or not self.exists():
            return set()
        with self._reader() as con:
            return {r[0] for r in con.execute(DONE_SQL, [DONE, analysis_ids]).fetchall()}

    def done_contents(self, config_key: str) -> set[str]:
        """Content hashes with a complete analysis under this configuration (ConfigKey.id)."""
        if not self.exists():
            return set()
        with self._reader() as con:
            if version(con) < 2:       # older databases have no config_key: nothing matches
                return set()
            return {r[0] for r in con.execute(DONE_CONTENTS_SQL, [DONE, config_key]).fetchall()}

    def minute_table(self, analysis_ids: list[str]) -> list[MinuteDensity]:
        """minute_density rows of these analyses, ordered."""
        with self._reader() as con:
            return rows_as(MinuteDensity, con.execute(
                MINUTES_SQL + "WHERE analysis_id IN (SELECT unnest(?)) ORDER BY analysis_id, minute", [analysis_ids]))

    def engagement(self, analysis_ids: list[str]) -> list[Engagement]:
        """The engagement rows of these analyses (when each is its stream's latest)."""
        if not analysis_ids:
            return []
        with self._reader() as con:
            return rows_as(Engagement, con.execute(ENGAGEMENT_SQL, [analysis_ids]))

    def report_targets(self, video_ids: list[str] | None = None) -> list[ReportTarget]:
        """Latest analyses (one per video stream) to report on: all, or those of `video_ids`."""
        with self._reader() as con:
            rows = rows_as(ReportTarget, con.execute(TARGETS_SQL))
        if video_ids is not None:
            missing = sorted(set(video_ids) - {r.video_id for r in rows})
            if missing:
                raise StoreError(f"no analysed video with id {', '.join(missing)}; "
                                 "see `laughtrack query \"SELECT video_id, path FROM engagement\"`")
            rows = [r for r in rows if r.video_id in video_ids]
        return rows

    def target(self, video_id: str, stream_index: int) -> ReportTarget:
        """The latest analysis of one video stream; StoreError naming what is there when it is not."""
        found = self.report_targets([video_id])
        for t in found:
            if t.stream_index == stream_index:
                return t
        raise StoreError(f"video {video_id} has no analysed stream {stream_index} (analysed: "
                         f"{', '.join(str(t.stream_index) for t in found)})")

    def find_videos(self, ref: str) -> list[str]:
        """The analysed videos an id prefix or a stored path names (at most 10, sorted)."""
        ref = ref.strip()
        with self._reader() as con:
            prefix = ref.lower() if ref and all(c in "0123456789abcdefABCDEF" for c in ref) else "\x00"
            return [r[0] for r in con.execute(FIND_VIDEO_SQL, [prefix, ref]).fetchall()]

    def transcript(self, analysis_id: str) -> list[TranscriptSegment]:
        """The transcribed speech chunks of an analysis, in time order."""
        with self._reader() as con:
            return rows_as(TranscriptSegment, con.execute(TRANSCRIPT_SQL, [analysis_id]))

    def video_report(self, analysis_id: str) -> VideoReport:
        """Everything the per-video report and page show."""
        with self._reader() as con:
            parts = {key: rows_as(cls, con.execute(sql, [analysis_id])) for key, (cls, sql) in VIDEO_REPORT_SQL.items()}
            timeline = Timeline.of(con.execute(TIMELINE_SQL, [analysis_id]))
        if not parts["summary"]:
            raise StoreError(f"analysis {analysis_id} is not the latest of its stream (or not there)")
        return VideoReport(summary=parts.pop("summary")[0], timeline=timeline, **parts)

    def collection_report(self) -> CollectionReport:
        """The leaderboard and every per-minute row of the latest analyses."""
        with self._reader() as con:
            return CollectionReport(rows_as(Engagement, con.execute(LEADERBOARD_SQL)),
                                    rows_as(MinuteSeconds, con.execute(COLLECTION_MINUTES_SQL)))

