"""Labelled media: label formats, scores that can fail, tuning that helps, exports that open."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
import srt
import webvtt
from praatio import textgrid
from praatio.utilities.constants import Interval
from typer.testing import CliRunner

import timelines
from laughtrack import captions
from laughtrack.labelled import export, labels
from laughtrack.labelled.evaluation import FileEval, score
from laughtrack.events import EventOptions
from laughtrack.labelled.labels import Label, LabelError
from laughtrack.labelled.tuning import Windows, tune
from laughtrack.store.records import StoredEvent
from laughtrack_cli.main import app

pytestmark = pytest.mark.timeout(300)
REF = (Label("Laughter", 3.0, 6.0), Label("Applause", 10.0, 14.0), Label("Laughter", 40.0, 41.5),
       Label("Applause", 61.0, 66.0))


# --- label formats ----------------------------------------------------------------------------

def test_csv_paths_are_relative_to_the_csv_and_names_are_folded(tmp_path):
    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "a.mp4").write_bytes(b"x")
    (tmp_path / "l.csv").write_text("path,label,start_s,end_s\nmedia/a.mp4,laugh,1.5,3\n"
                                    "media/a.mp4,Applause,4,6\nmedia/a.mp4,music,7,8\nmedia/a.mp4,door,8,9\n")
    got = labels.read([tmp_path / "l.csv"])
    media = str((tmp_path / "media" / "a.mp4").resolve())
    assert got.files == {media: [Label("Laughter", 1.5, 3.0), Label("Applause", 4.0, 6.0), Label("BGM", 7.0, 8.0)]}
    assert got.ignored == {"door": 1}


def test_audacity_track_with_frequency_lines_and_points(tmp_path):
    (tmp_path / "talk.wav").write_bytes(b"x")
    (tmp_path / "talk.txt").write_text("1.000000\t2.500000\tlaughter\n\\\t200.0\t4000.0\n"
                                       "5.000000\t5.000000\tapplause\n7.0\t9.25\tclapping\n")
    got = labels.read([tmp_path / "talk.txt"])
    assert list(got.files.values()) == [[Label("Laughter", 1.0, 2.5), Label("Applause", 7.0, 9.25)]]


@pytest.mark.parametrize("fmt", ["long_textgrid", "short_textgrid"])
def test_textgrid_one_tier_per_kind_both_formats(tmp_path, fmt):
    (tmp_path / "show.mkv").write_bytes(b"x")
    grid = textgrid.Textgrid()
    grid.addTier(textgrid.IntervalTier("laughter", [Interval(1.0, 2.0, "x"), Interval(4.0, 5.5, "laugh")], 0, 10))
    grid.addTier(textgrid.IntervalTier("events", [Interval(1.5, 3.0, "Applause")], 0, 10))
    grid.save(str(tmp_path / "show.TextGrid"), format=fmt, includeBlankSpaces=True)
    got = labels.read([tmp_path / "show.TextGrid"])
    assert sorted(next(iter(got.files.values())), key=lambda x: x.start_s) == [
        Label("Laughter", 1.0, 2.0), Label("Applause", 1.5, 3.0), Label("Laughter", 4.0, 5.5)]


@pytest.mark.parametrize("name, text, message", [
    ("l.csv", "path,label,start_s,end_s\na.wav,laughter,one,2\n", r"l\.csv:2: 'one' is not a time"),
    ("l.csv", "path,label,start\na.wav,laughter,1\n", "needs the columns"),
    ("l.csv", "path,label,start_s,end_s\nnope.wav,laughter,1,2\n", "no media file"),
    ("l.csv", "path,label,start_s,end_s\na.wav,laughter,3,2\n", "start 3.0 and end 2.0"),
    ("a.txt", "1.0 2.0 laughter\n", r"a\.txt:1: expected start<TAB>end<TAB>label"),
    ("b.txt", "1\t2\tlaughter\n", "no media file named b"),
    ("a.TextGrid", "not a grid", "not a readable TextGrid"),
    ("a.json", "{}", "unknown label format"),
])
def test_bad_label_files_say_file_line_and_reason(tmp_path, name, text, message):
    (tmp_path / "a.wav").write_bytes(b"x")
    (tmp_path / name).write_text(text)
    with pytest.raises(LabelError, match=message):
        labels.read([tmp_path / name])


# --- scores -----------------------------------------------------------------------------------

def evaluate(estimate, reference=REF, collar=0.5):
    return {s.label: s for s in score([FileEval("a", 90.0, tuple(reference), tuple(estimate))],
                                      ("Laughter", "Applause"), collar)}


def test_own_truth_scores_one_and_every_error_is_zero():
    s = evaluate(REF)
    for label in ("Laughter", "Applause", "overall"):
        assert s[label].event_f1 == 1.0 and s[label].segment_f1 == 1.0
        assert s[label].onset_error_s == 0 and s[label].minute_error_max_s == 0


def test_shifted_labels_score_low_and_say_by_how_much():
    shifted = [Label(x.label, x.start_s + 2.0, x.end_s + 2.0) for x in REF]
    s = evaluate(shifted)
    assert s["overall"].event_f1 == 0.0                        # no onset within the 0.5 s collar
    assert s["Laughter"].onset_error_s == pytest.approx(2.0)
    assert s["overall"].segment_f1 < 0.7


def test_finding_nothing_scores_zero_not_undefined():
    s = evaluate([])
    assert s["Laughter"].event_f1 == 0.0 and s["overall"].segment_f1 == 0.0 and s["Laughter"].n_est == 0


def test_wrong_kind_and_missing_events_lower_precision_and_recall():
    wrong = [Label("Applause" if x.label == "Laughter" else "Laughter", x.start_s, x.end_s) for x in REF]
    assert evaluate(wrong)["overall"].event_f1 == 0.0
    half = evaluate(REF[::2])
    assert half["overall"].event_precision == 1.0 and half["overall"].event_recall == 0.5


def test_per_minute_error_counts_seconds_per_minute():
    s = evaluate([Label("Applause", 61.0, 63.0), *REF[:3]])     # 3 s of applause missing in minute 1
    assert s["Applause"].minute_error_max_s == pytest.approx(3.0)


# --- tuning -----------------------------------------------------------------------------------

def soft_windows(level: float) -> Windows:
    """1 s windows every 0.5 s over 90 s: P(label) = `level` where REF has it, 0.05 elsewhere."""
    start = np.arange(0, 89.01, 0.5)
    end = start + 1.0
    probs = {}
    for label in ("Laughter", "Applause", "Speech", "Event_UNK"):
        p = np.full(len(start), 0.05)
        for x in REF:
            if x.label == label:
                covered = np.clip(np.minimum(end, x.end_s) - np.maximum(start, x.start_s), 0, None) / 1.0
                p = np.maximum(p, level * covered)
        probs[label] = p
    return Windows("a", 90.0, REF, start, end, probs)


def test_tune_finds_rules_where_one_rule_for_all_misses_quiet_laughter():
    tuned = tune([soft_windows(0.4)], EventOptions(labels=()), ("Laughter", "Applause"), "quiet")
    before = {s.label: s for s in tuned.before}
    after = {s.label: s for s in tuned.after}
    assert before["overall"].event_f1 == 0.0 or np.isnan(before["overall"].event_f1)   # 0.4 < on = 0.5
    assert after["overall"].event_f1 == 1.0
    assert tuned.options.name == "quiet" and tuned.options.rule("Laughter").on < 0.4
    assert EventOptions.from_dict(json.loads(json.dumps(tuned.options.to_dict()))) == tuned.options


# --- export -----------------------------------------------------------------------------------

EVENTS = [StoredEvent("Laughter", 3.25, 6.0, 0.91, 0.7), StoredEvent("Applause", 61.5, 3725.125, 0.88, 0.8)]


def test_exports_open_in_their_libraries(tmp_path):
    vtt = tmp_path / "m.vtt"
    vtt.write_text(export.render(EVENTS, "vtt"))
    cues = [(c.start_time.in_milliseconds() / 1000, c.end_time.in_milliseconds() / 1000, c.text)
            for c in webvtt.read(str(vtt))]
    assert cues == [(3.25, 6.0, "[laughter] peak 0.91"), (61.5, 3725.125, "[applause] peak 0.88")]
    subs = list(srt.parse(export.render(EVENTS, "srt")))
    assert [(s.start.total_seconds(), s.end.total_seconds(), s.content) for s in subs] == [c for c in cues]
    (tmp_path / "m.wav").write_bytes(b"x")
    (tmp_path / "m.txt").write_text(export.render(EVENTS, "audacity"))
    assert list(labels.read([tmp_path / "m.txt"]).files.values()) == [
        [Label("Laughter", 3.25, 6.0), Label("Applause", 61.5, 3725.125)]]
    rows = list(csv.DictReader(io.StringIO(export.render(EVENTS, "csv"))))
    assert [(r["label"], float(r["start_s"])) for r in rows] == [("Laughter", 3.25), ("Applause", 61.5)]


# --- end to end: synth → eval / tune / analyze --events / export -------------------------------

def write_set(tmp_path):
    """The accuracy and overlap sets as one labelled set (the labels `laughtrack synth` writes)."""
    from laughtrack.synthetic import synth
    rows = ["path,label,start_s,end_s"]
    for name, timeline in (timelines.accuracy_timelines() | timelines.overlap_timelines()).items():
        media = tmp_path / f"{name}.wav"
        synth.render_to(timeline, media)
        rows += media.with_suffix(".labels.csv").read_text().splitlines()[1:]
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    return tmp_path / "labels.csv"


def cli(*args):
    """stdout of a successful command (the progress bars go to stderr)."""
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.timeout(600)
def test_eval_tune_and_export_end_to_end(tmp_path, no_network, prefect_server, cache_dir):
    labels_csv = write_set(tmp_path)
    common = ["--db", str(tmp_path / "r.duckdb"), "--model", "fixture"]
    own = json.loads(cli("eval", str(labels_csv), *common, "--format", "json"))
    assert set(own) == {"Laughter", "Applause", "Speech", "overall"}
    assert own["Laughter"]["event_f1"] >= 0.9 and own["Applause"]["event_f1"] >= 0.9, own
    assert own["Laughter"]["minute_error_max_s"] <= 3.0         # the overlap set's bound (test_scan)

    shifted = tmp_path / "shifted.csv"
    rows = list(csv.DictReader(labels_csv.open()))
    with shifted.open("w") as f:
        f.write("path,label,start_s,end_s\n")
        f.writelines(f"{r['path']},{r['label']},{float(r['start_s']) + 2.5},{float(r['end_s']) + 2.5}\n" for r in rows)
    bad = json.loads(cli("eval", str(shifted), *common, "--format", "json"))
    assert bad["overall"]["event_f1"] <= 0.2 < own["overall"]["event_f1"]

    table = cli("tune", str(labels_csv), *common, "--save", "stage")
    assert "saved as 'stage'" in table and "mean event F1" in table
    cli("analyze", str(tmp_path / "crossing.wav"), *common, "--events", "stage")
    from laughtrack.store import open_store
    params = open_store(str(tmp_path / "r.duckdb")).query(
        "SELECT params_json FROM analyses a JOIN videos v USING (video_id) WHERE v.path LIKE '%crossing.wav' "
        "ORDER BY finished_at")[1]
    assert [json.loads(p)["events"]["name"] for (p,) in params] == ["default", "stage"]   # lineage

    unknown = CliRunner().invoke(app, ["analyze", str(tmp_path / "crossing.wav"), *common, "--events", "nope"])
    assert unknown.exit_code == 2 and "no event parameter set 'nope'" in unknown.output

    vid = json.loads(cli("query", "--db", str(tmp_path / "r.duckdb"), "-f", "json",
                         "SELECT video_id FROM videos WHERE path LIKE '%laughter_under_speech.wav'"))[0]["video_id"]
    cues = list(webvtt.from_buffer(io.StringIO(cli("export", "--db", str(tmp_path / "r.duckdb"), "--video", vid))))
    laughs = [c.start_time.in_milliseconds() / 1000 for c in cues if c.text.startswith("[laughter]")]
    truth = [float(r["start_s"]) for r in rows if "laughter_under_speech" in r["path"] and r["label"] == "laughter"]
    near = [t for t in truth if any(abs(t - x) <= 1.0 for x in laughs)]
    assert len(near) >= len(truth) - 1 and len(laughs) <= len(truth) + 1, (truth, laughs)   # an editor's list


@pytest.mark.timeout(600)
def test_captions_are_labels_for_eval_and_tune(tmp_path, no_network, prefect_server, cache_dir):
    """The captions `laughtrack synth` writes beside a talk, as a captioner's file: eval scores
    laughtrack high on them, a file 3 s late low; tune runs on them; a broken file is refused
    with its file:line before anything is analysed."""
    from laughtrack.synthetic import synth
    talk = tmp_path / "talk.mp4"
    synth.render_to(synth.parse_timeline({"duration_s": 75.3, "seed": 61, "segments": [
        {"start_s": 0, "end_s": 20.2, "kind": "speech"}, {"start_s": 20.2, "end_s": 24.5, "kind": "laughter"},
        {"start_s": 25, "end_s": 55.4, "kind": "speech"}, {"start_s": 57.1, "end_s": 63.3, "kind": "applause"},
        {"start_s": 63.3, "end_s": 70, "kind": "speech"}, {"start_s": 70.2, "end_s": 74.1, "kind": "laughter"}]}),
        talk)
    vtt = tmp_path / "talk.captions.vtt"
    assert "[LAUGHTER]" in vtt.read_text() and "[APPLAUSE]" in vtt.read_text()
    common = ["--db", str(tmp_path / "r.duckdb"), "--model", "fixture"]
    result = CliRunner().invoke(app, ["eval", str(vtt), *common, "--format", "json"])
    assert result.exit_code == 0, result.output
    own = json.loads(result.stdout)
    assert "caption labels (1 file(s))" in result.stderr and "collar is 2 s" in result.stderr
    assert own["Laughter"]["event_f1"] == 1.0 and own["Applause"]["event_f1"] == 1.0, own
    assert own["Laughter"]["segment_f1"] >= 0.9 and own["Applause"]["segment_f1"] >= 0.9, own

    late = tmp_path / "late" / "talk.srt"                  # the same captions, 3 s late, as SRT
    late.parent.mkdir()
    (late.parent / "talk.mp4").symlink_to(talk)
    cues = [(w, c) for w, c in captions.read(vtt)]
    late.write_text(captions.render([captions.Cue(c.start_s + 3, c.end_s + 3, c.text) for _, c in cues], "srt"))
    shifted = json.loads(cli("eval", str(late), *common, "--format", "json"))
    assert shifted["Laughter"]["event_f1"] == 0.0 and shifted["overall"]["event_f1"] < own["overall"]["event_f1"]

    table = cli("tune", str(vtt), *common, "--save", "captioned")
    assert "mean event F1" in table

    written = list(srt.parse(cli("export", "--db", str(tmp_path / "r.duckdb"), "--video", str(talk), "--captions",
                                 "-f", "srt")))                 # laughtrack's own captions of the talk
    assert all(len(s.content.split("\n")) <= 2 and max(map(len, s.content.split("\n"))) <= 42 and
               (s.end - s.start).total_seconds() <= 7.0 for s in written)
    assert all(a.end <= b.start for a, b in zip(written, written[1:]))
    laughs = [s.start.total_seconds() for s in written if "[LAUGHTER]" in s.content]
    assert [t for t in laughs if abs(t - 20.2) <= 0.5] and [t for t in laughs if abs(t - 70.2) <= 0.5], laughs
    wrong = CliRunner().invoke(app, ["export", "--db", str(tmp_path / "r.duckdb"), "--video", str(talk),
                                     "--captions", "-f", "csv"])
    assert wrong.exit_code == 2 and "captions are vtt or srt" in wrong.output

    broken = tmp_path / "broken" / "talk.vtt"
    broken.parent.mkdir()
    (broken.parent / "talk.mp4").symlink_to(talk)
    broken.write_text("WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nhi\n\n00:00:09.000 --> 00:00:05.000\n[laughs]\n")
    refused = CliRunner().invoke(app, ["eval", str(broken), *common])
    assert refused.exit_code == 1 and f"{broken}:6: the cue ends" in refused.output, refused.output
