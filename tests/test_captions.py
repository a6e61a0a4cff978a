"""The timed rich transcript and captions: lines split at sounds, caption files that the caption
libraries and a browser read back within the broadcasters' limits, and caption files read as
labels (the documented table, file:line errors, the files found beside their media)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import srt
import webvtt

from laughtrack import captions, transcript
from laughtrack.captions import Cue
from laughtrack.labelled import labels
from laughtrack.store.records import StoredEvent, Timeline, TranscriptSegment, WindowProbs
from laughtrack.transcript import RichTranscript, SoundLine, SpeechLine

pytestmark = pytest.mark.timeout(120)


def segment(start: float, end: float, words: str, emotion: str = "HAPPY", gap: tuple = ()) -> TranscriptSegment:
    """A transcribed chunk whose tokens (one per word) share its time evenly, but for a `gap`
    (from, to) in which nothing is said."""
    pieces = words.split()
    spoken = (end - start) - (gap[1] - gap[0] if gap else 0)
    step, t, tokens = spoken / len(pieces), start, [["<|en|>", start, start]]
    for w in pieces:
        if gap and abs(t - gap[0]) < 1e-6:
            t = gap[1]
        tokens.append(["\u2581" + w, round(t, 3), round(t + step, 3)])
        t += step
    return TranscriptSegment(start, end, "en", emotion, "Speech", "", words, json.dumps(tokens))


NO_EMOTIONS = WindowProbs(np.zeros(0), np.zeros(0), {})


def test_a_laugh_inside_a_speech_chunk_ends_the_line_and_the_next_words_start_after_it():
    words = " ".join(f"w{k}" for k in range(12))                   # w0–w5 over 0–6 s, a laugh, w6–w11 over 8–14 s
    laugh = StoredEvent("Laughter", 6.0, 8.0, 0.97, 0.8)
    emotions = WindowProbs(np.arange(0, 14, 0.5), np.arange(0.5, 14.5, 0.5), {"HAPPY": np.full(28, 0.75)})
    rich = transcript.build([segment(0, 14, words, gap=(6.0, 8.0))], [laugh, StoredEvent("Speech", 0, 12, 0.9, 0.9)], emotions)
    kinds = [type(i).__name__ for i in rich.items]
    assert kinds == ["SpeechLine", "SoundLine", "SpeechLine"], rich.text()
    before, sound, after = rich.items
    assert before.words == "w0 w1 w2 w3 w4 w5" and before.end_s <= laugh.start_s
    assert after.words.startswith("w6") and after.start_s >= laugh.end_s
    assert not [s for s in rich.speech if s.start_s < laugh.end_s and s.end_s > laugh.start_s]
    assert before.emotion_p == pytest.approx(0.75) and before.emoji == "😊"
    assert rich.text().splitlines()[1] == "0:06.0  😀 [laughter 2.0 s, p 0.97]"
    assert rich.plain() == "w0 w1 w2 w3 w4 w5\nw6 w7 w8 w9 w10 w11"
    assert [d["kind"] for d in rich.as_json()] == ["speech", "sound", "speech"]


def test_music_under_a_talk_does_not_cut_its_lines():
    rich = transcript.build([segment(0, 10, "one two three four")], [StoredEvent("BGM", 0, 30, 0.9, 0.8)],
                            NO_EMOTIONS)
    assert [i.words for i in rich.speech] == ["one two three four"] and rich.sounds[0].name == "music"


def test_words_said_as_a_laugh_begins_keep_their_own_times():
    seg = TranscriptSegment(3, 10, "en", "NEUTRAL", "Speech", "", "well c", json.dumps(
        [["\u2581well", 4.5, 5.0], ["\u2581c", 8.0, 9.0]]))
    rich = transcript.build([seg], [StoredEvent("Laughter", 4.0, 7.0, 0.9, 0.9)], NO_EMOTIONS)
    assert [(i.start_s, i.end_s, i.words) for i in rich.speech] == [(4.5, 5.0, "well"), (8.0, 10.0, "c")]
    overlapping = TranscriptSegment(0, 10, "en", "NEUTRAL", "Speech", "", "one two three", json.dumps(
        [["\u2581one", 1, 2], ["\u2581two", 6.6, 7.0], ["\u2581three", 9, 9.5]]))
    rich = transcript.build([overlapping], [StoredEvent("Laughter", 5, 8, 0.9, 0.9),
                                            StoredEvent("Applause", 5.5, 9, 0.9, 0.9)], NO_EMOTIONS)
    assert all(i.end_s - i.start_s >= transcript.MIN_LINE_S for i in rich.speech), rich.text()
    assert " ".join(i.words for i in rich.speech) == "one two three"


@pytest.mark.parametrize("seconds, shown", [(0, "0:00.0"), (63.04, "1:03.0"), (3599.96, "1:00:00.0"),
                                            (3 * 3600 + 61.5, "3:01:01.5")])
def test_the_clock(seconds, shown):
    assert transcript.clock(seconds) == shown


# --- captions written ------------------------------------------------------------------------

LONG = ("So the thing about airports is that everyone there is pretending to be calm while quietly "
        "calculating whether they have time for one more coffee before the gate closes forever")
TALK = RichTranscript.ordered([
    SpeechLine(0.0, 14.0, "en", "NEUTRAL", None, LONG),
    SoundLine(14.0, 16.5, "Laughter", 0.99, 0.9),
    SpeechLine(16.6, 19.0, "zh", "HAPPY", 0.8, "我们今天讨论的是一个非常重要而且非常有意思的问题大家好好听"),
    SoundLine(18.8, 40.0, "Applause", 0.95, 0.9),                  # starts before the words end
    SoundLine(19.2, 19.5, "Laughter", 0.6, 0.6),                    # too soon after: said in one cue
    SoundLine(41.0, 41.3, "Cough", 0.7, 0.7),
])


def test_captions_keep_two_lines_of_42_columns_seven_seconds_and_never_overlap():
    cues = captions.caption_cues(TALK)
    assert cues == sorted(cues, key=lambda c: c.start_s)
    for c in cues:
        assert c.end_s > c.start_s and c.end_s - c.start_s <= captions.CUE_MAX_S + 1e-6, c
        lines = c.text.split("\n")
        assert len(lines) <= 2 and max(map(captions.columns, lines)) <= 42, c
    for a, b in zip(cues, cues[1:]):
        assert a.end_s <= b.start_s, (a, b)
    words = " ".join(c.text.replace("\n", " ") for c in cues if "[" not in c.text)
    assert LONG in words                                            # every word, in order
    assert "".join(c.text.replace("\n", "") for c in cues if "我" in c.text or "听" in c.text).count("听") == 1
    laughter = [c for c in cues if "[LAUGHTER]" in c.text]
    assert laughter[0].start_s == 14.0 and sum(c.text.count("[APPLAUSE]") for c in cues) == 3   # 19.0–40.0 s in 3
    assert [c.text for c in cues if c.start_s >= 41] == ["[COUGHING]"] and cues[-1].end_s == 42.0   # ≥ 1 s on screen


def check(cues: list[Cue]) -> None:
    """What a caption viewer needs of any cue list."""
    for c in cues:
        assert c.end_s > c.start_s and c.end_s - c.start_s <= captions.CUE_MAX_S + 1e-6, c
        lines = c.text.split("\n")
        assert len(lines) <= 2 and max(map(captions.columns, lines)) <= 42, c
    assert all(a.end_s <= b.start_s for a, b in zip(cues, cues[1:])), cues


def test_music_under_a_talk_is_a_tag_and_never_cuts_the_words():
    words = " ".join(["word"] * 60)
    rich = RichTranscript.ordered([SpeechLine(0, 20, "en", None, None, words), SoundLine(0, 60, "BGM", 0.9, 0.9)])
    cues = captions.caption_cues(rich)
    check(cues)
    speech = [c for c in cues if "word" in c.text]
    assert sum(c.end_s - c.start_s for c in speech) == pytest.approx(20.0, abs=0.01)
    assert [c.start_s for c in cues if c.text == "[MUSIC]"][0] == 20.0            # in the silence after the words
    assert " ".join(w for c in speech for w in c.text.split() if w == "word") == words
    under = captions.caption_cues(RichTranscript.ordered([SpeechLine(0, 20, "en", None, None, words),
                                                         SoundLine(2, 18, "BGM", 0.9, 0.9)]))
    check(under)
    assert [c.text.count("[MUSIC]") for c in under] == [1] + [0] * (len(under) - 1)   # a tag where it starts
    assert sum(c.end_s - c.start_s for c in under) == pytest.approx(20.0, abs=0.01)


@pytest.mark.parametrize("line", [SpeechLine(0, 15, "en", None, None, "Okay."),
                                  SpeechLine(0, 14, "zh", None, None, "我们今天讨论一个重要问题")])
def test_a_slow_line_is_never_on_screen_more_than_seven_seconds(line):
    cues = captions.caption_cues(RichTranscript.ordered([line]))
    check(cues)
    assert "".join(c.text.replace("\n", "") for c in cues) == line.words


def test_a_short_laugh_before_the_words_does_not_push_them_late():
    rich = RichTranscript.ordered([SoundLine(10.0, 10.3, "Laughter", 0.9, 0.9),
                                   SpeechLine(10.3, 14, "en", None, None, "and then he said")])
    cues = captions.caption_cues(rich)
    check(cues)
    assert [c.start_s for c in cues if "said" in c.text] == [10.3] and "[LAUGHTER]" in cues[0].text


def test_synth_truth_captions_read_back_as_the_truth_where_sounds_overlap_words(tmp_path):
    from laughtrack.synthetic import synth
    timeline = synth.parse_timeline({"duration_s": 40, "seed": 1, "segments": [
        {"start_s": 0, "end_s": 30, "kind": "speech"}, {"start_s": 20, "end_s": 22, "kind": "applause"},
        {"start_s": 20.3, "end_s": 24, "kind": "laughter"}, {"start_s": 5, "end_s": 7, "kind": "laughter"}]})
    words = [(t, t + 0.4, "ba") for t in np.arange(0, 30, 0.5)]
    (tmp_path / "t.wav").write_bytes(b"x")
    (tmp_path / "t.captions.vtt").write_text(synth.captions_vtt(timeline, words))
    got = sorted((lb.label, lb.start_s, lb.end_s) for lb in next(iter(labels.read([tmp_path / "t.captions.vtt"])
                                                                      .files.values())))
    assert got == [("Applause", 20.0, 22.0), ("Laughter", 5.0, 7.0), ("Laughter", 20.3, 24.0)]


@pytest.mark.parametrize("fmt", captions.FORMATS)
def test_caption_files_read_back_in_their_libraries(tmp_path, fmt):
    cues = captions.caption_cues(TALK)
    path = tmp_path / f"talk.{fmt}"
    path.write_text(captions.render(cues, fmt))
    if fmt == "vtt":
        back = [(c.start_time.in_milliseconds() / 1000, c.end_time.in_milliseconds() / 1000, c.text)
                for c in webvtt.read(str(path))]
    else:
        back = [(s.start.total_seconds(), s.end.total_seconds(), s.content) for s in srt.parse(path.read_text())]
    assert back == [(pytest.approx(c.start_s, abs=1e-3), pytest.approx(c.end_s, abs=1e-3), c.text) for c in cues]
    assert [cue for _, cue in captions.read(path)] == [Cue(*b) for b in back]


# --- captions read as labels -----------------------------------------------------------------

@pytest.mark.parametrize("text, tags, rest", [
    ("(Laughter)", ["Laughter"], []), ("[laughs]", ["Laughter"], []), ("[LAUGHING]", ["Laughter"], []),
    ("(audience laughs)", ["Laughter"], []), ("[chuckles]", ["Laughter"], []), ("<i>(giggling)</i>", ["Laughter"], []),
    ("(Applause)", ["Applause"], []), ("[APPLAUSE]", ["Applause"], []), ("(audience applauds)", ["Applause"], []),
    ("[clapping]", ["Applause"], []), ("(Cheers and applause)", ["Applause"], []),
    ("♪ la la ♪", ["BGM"], []), ("[MUSIC]", ["BGM"], []), ("(upbeat music playing)", ["BGM"], []),
    ("{\\an8}[LAUGHTER] Thank you.", ["Laughter"], []),
    ("[door slams]", [], ["[door slams]"]), ("(Cheers)", [], ["(cheers)"]), ("[SPEAKER 2] Hello", [], ["[speaker 2]"]),
    ("We laughed so much", [], []), ("Clap your hands", [], []),        # words, not a sound cue
    ("[laughter and applause]", ["Laughter", "Applause"], []),
])
def test_sound_cues_become_labels_by_the_documented_table(text, tags, rest):
    assert captions.sound_tags(text) == (tags, rest)
    assert all(f"`{t}`" in captions.__doc__ for t in ("(Laughter)", "[clapping]", "♪ la la ♪"))


def write(path, text):
    path.write_text(text)
    return path


def test_a_caption_file_beside_its_video_is_a_label_set(tmp_path):
    (tmp_path / "talk.mp4").write_bytes(b"x")
    vtt = write(tmp_path / "talk.en.vtt", "WEBVTT\n\n00:00:01.000 --> 00:00:04.000\nHello there\n\n"
                "00:00:04.000 --> 00:00:06.000\n[LAUGHTER]\n\n00:00:06.050 --> 00:00:07.500\n(laughter)\n\n"
                "00:00:09.000 --> 00:00:12.000\n<i>[applause]</i>\n\n00:00:12.000 --> 00:00:13.000\n[door slams]\n")
    found = labels.read([vtt])
    assert list(found.files.values()) == [[labels.Label("Laughter", 4.0, 7.5), labels.Label("Applause", 9.0, 12.0)]]
    assert found.coarse and found.speech_cues == 1 and dict(found.ignored) == {"[door slams]": 1}
    srt_file = write(tmp_path / "talk.captions.srt", "1\n00:00:04,000 --> 00:00:06,000\n(Laughter)\n\n")
    assert list(labels.read([srt_file]).files) == [str((tmp_path / "talk.mp4").resolve())]


@pytest.mark.parametrize("name, text, message", [
    ("a.vtt", "00:00:01.000 --> 00:00:02.000\nhi\n", "a.vtt:1: not WebVTT"),
    ("b.vtt", "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nhi\n\n00:01.0 --> 00:02.000\n[laughs]\n",
     "b.vtt:6: cue timings '00:01.0 --> 00:02.000' are not"),
    ("c.vtt", "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nhi\n\n00:00:09.000 --> 00:00:05.000\n[laughs]\n",
     "c.vtt:6: the cue ends (5.000 s) before it starts (9.000 s)"),
    ("d.srt", "1\n00:00:01,000 --> 00:00:02,000\nhi\n\n2\n00:00:0x,000 --> 00:00:03,000\n[laughs]\n",
     "d.srt:5: not an SRT cue"),
    ("e.srt", "", "e.srt: no cues"), ("f.vtt", "WEBVTT\n\n", "f.vtt: no cues"),
])
def test_a_bad_caption_file_is_refused_with_its_file_and_line(tmp_path, name, text, message):
    path = write(tmp_path / name, text)
    (tmp_path / (path.stem + ".wav")).write_bytes(b"x")
    with pytest.raises(labels.LabelError, match="^" + str(tmp_path / message).replace("(", r"\(")
                       .replace(")", r"\)").replace(".", r"\.")):
        labels.read([path])


def test_captions_round_trip_to_the_same_sounds(tmp_path):
    """laughtrack's own captions, read back as labels, give the sounds it found."""
    (tmp_path / "talk.wav").write_bytes(b"x")
    path = write(tmp_path / "talk.vtt", captions.render(captions.caption_cues(TALK), "vtt"))
    got = labels.read([path])
    assert sorted((lb.label, lb.start_s) for lb in next(iter(got.files.values()))) == [
        ("Applause", 19.0), ("Laughter", 14.0), ("Laughter", 19.0)]     # after the words; the laugh at 19.2 s shares its cue


# --- the page's timeline ---------------------------------------------------------------------

def test_the_timeline_of_three_hours_is_thinned_without_losing_a_laugh():
    from reports.pages import TIMELINE_POINTS, timeline_points
    n = 3 * 3600 * 2                                                # 0.5 s windows
    start = np.arange(n) * 0.5
    laughter = np.zeros(n)
    laughter[12345] = 0.97                                          # one window, 1:42:52
    tl = Timeline(start, start + 1.0, laughter, np.zeros(n), np.full(n, 0.5))
    rows = timeline_points(tl)
    assert sum(r[2] == "laughter" for r in rows) <= TIMELINE_POINTS
    assert max(r[1] for r in rows if r[2] == "laughter") == 0.97
    near = timeline_points(tl, 6170, 6180)                          # zoomed in: every window
    assert sum(r[2] == "laughter" for r in near) == 21 and ("1:42:53.0" in {r[3] for r in near})
