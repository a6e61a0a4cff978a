"""Synthetic media: determinism, truth arithmetic, validation, real ffmpeg round trips."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from laughtrack import media
from laughtrack.synthetic import synth
from laughtrack_cli.main import app
from laughtrack.errors import TimelineError


def tl(duration, *segs, seed=3):
    return synth.parse_timeline({"duration_s": duration, "seed": seed, "segments": [
        {"start_s": a, "end_s": b, "kind": k} for a, b, k in segs]})


def test_render_is_deterministic_per_seed_and_segment():
    a, words_a = synth.render(tl(6, (0, 3, "speech"), (3, 4.5, "laughter"), (4.5, 6, "applause")))
    b, words_b = synth.render(tl(6, (0, 3, "speech"), (3, 4.5, "laughter"), (4.5, 6, "applause")))
    c, _ = synth.render(tl(6, (0, 3, "speech"), (3, 4.5, "laughter"), (4.5, 6, "applause"), seed=4))
    assert np.array_equal(a, b) and words_a == words_b
    assert not np.array_equal(a, c)
    assert a.dtype == np.float32 and len(a) == 6 * synth.SAMPLE_RATE and np.abs(a).max() <= 1.0
    assert words_a and all(0 <= s < e <= 3.0 for s, e, _ in words_a)


@pytest.mark.parametrize("kind", ["speech", "laughter", "applause"])
def test_each_kind_is_loud_where_it_is_and_quiet_elsewhere(kind):
    audio, _ = synth.render(tl(4, (1, 3, kind)))
    rms = lambda x: float(np.sqrt(np.mean(x ** 2)))  # noqa: E731
    sr = synth.SAMPLE_RATE
    assert rms(audio[sr:3 * sr]) > 20 * rms(audio[:sr])
    assert rms(audio[3 * sr + 1600:]) < 3 * synth.NOISE_FLOOR


def test_laughter_bursts_come_at_4_to_6_hz():
    audio, _ = synth.render(tl(6, (0, 6, "laughter"), seed=11))
    env = np.abs(audio).reshape(-1, 160).mean(1)  # 10 ms envelope
    spectrum = np.abs(np.fft.rfft(env - env.mean()))
    freqs = np.fft.rfftfreq(len(env), 0.01)
    band = (freqs > 1) & (freqs < 20)
    assert 3.5 <= freqs[band][spectrum[band].argmax()] <= 6.5


@pytest.mark.parametrize("segs, expected", [
    # an event crossing the minute boundary is split at exactly 60 s
    ([(57.5, 63.5, "laughter")], [(0, 2.5, 0, 1, 0), (1, 3.5, 0, 0, 0)]),
    # back-to-back events; counts go to the minute of the onset
    ([(10, 12, "applause"), (12, 13, "laughter"), (13, 14, "applause")], [(0, 1.0, 3.0, 1, 2), (1, 0, 0, 0, 0)]),
    # an event ending exactly on the boundary stays in its minute
    ([(59.0, 60.0, "laughter")], [(0, 1.0, 0, 1, 0), (1, 0, 0, 0, 0)]),
    # float drift: 59.9999 s is still minute 0
    ([(59.9, 59.9999, "applause")], [(0, 0, 0.1, 0, 1), (1, 0, 0, 0, 0)]),
])
def test_per_minute_truth(segs, expected):
    rows = synth.per_minute_truth(tl(65.0, *segs))
    got = [(r.minute, r.laughter_s, r.applause_s, r.laughter_count, r.applause_count) for r in rows]
    assert got == expected


def test_overlapping_kinds_are_each_counted_and_one_kind_is_a_union():
    # laughter under speech, applause over the laughter's end, two laughter segments that overlap
    rows = synth.per_minute_truth(tl(125.0, (0, 50, "speech"), (40, 46, "laughter"), (44, 48, "laughter"),
                                     (47, 62, "applause")))
    assert (rows[0].speech_s, rows[0].laughter_s, rows[0].laughter_count) == (50.0, 8.0, 1)
    assert (rows[0].applause_s, rows[1].applause_s, rows[0].applause_count) == (13.0, 2.0, 1)


def test_overlapping_sounds_are_mixed():
    speech_only = synth.render(tl(4.0, (0, 4, "speech")))[0]
    mixed = synth.render(tl(4.0, (0, 4, "speech"), (1, 3, "laughter")))[0]
    a, b = 1 * synth.SAMPLE_RATE, 3 * synth.SAMPLE_RATE
    assert np.array_equal(mixed[:a], speech_only[:a])                 # same speech outside the laugh
    assert np.abs(mixed[a:b] - speech_only[a:b]).mean() > 0.01        # and something on top inside it


def test_last_minute_may_be_short_and_speech_is_counted():
    rows = synth.per_minute_truth(tl(125.0, (100, 125, "speech")))
    assert len(rows) == 3 and rows[1].speech_s == 20.0 and rows[2].speech_s == 5.0


@pytest.mark.parametrize("data, message", [
    ({"segments": []}, "duration_s"),
    ({"duration_s": -1}, "duration_s"),
    ({"duration_s": 10, "segments": [{"start_s": 0, "end_s": 2, "kind": "music"}]}, "kind"),
    ({"duration_s": 10, "segments": [{"start_s": 5, "end_s": 12, "kind": "speech"}]}, "outside"),
    ({"duration_s": 10, "segments": [{"start_s": 1}]}, "segment 0"),
])
def test_bad_timelines_are_rejected_with_the_reason(data, message):
    with pytest.raises(TimelineError, match=message):
        synth.parse_timeline(data)


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".webm", ".wav"])
def test_synth_cli_writes_media_and_truth(tmp_path, suffix):
    timeline = tmp_path / "t.json"
    timeline.write_text(json.dumps({"duration_s": 3.5, "seed": 1, "segments": [
        {"start_s": 0.5, "end_s": 2.0, "kind": "laughter"}]}))
    out = tmp_path / f"clip{suffix}"
    result = CliRunner().invoke(app, ["synth", str(timeline), str(out)])
    assert result.exit_code == 0, result.output
    truth = json.loads((tmp_path / "clip.truth.json").read_text())
    assert truth == [{"minute": 0, "laughter_s": 1.5, "applause_s": 0.0, "speech_s": 0.0,
                      "laughter_count": 1, "applause_count": 0}]
    decoded = media.decode_audio(out)
    assert abs(len(decoded) / media.SAMPLE_RATE - 3.5) < 0.1
    original, _ = synth.render(synth.load_timeline(timeline))
    n = min(len(decoded), len(original))
    if suffix == ".wav":  # lossless: the same samples to 16-bit precision
        assert np.abs(decoded[:n] - original[:n]).max() < 1e-4


def test_synth_cli_bad_timeline_exits_2_with_one_line(tmp_path):
    timeline = tmp_path / "bad.json"
    timeline.write_text('{"duration_s": 5, "segments": [{"start_s": 1, "end_s": 9, "kind": "speech"}]}')
    result = CliRunner().invoke(app, ["synth", str(timeline), str(tmp_path / "x.mp4")])
    assert result.exit_code == 2
    assert "bad.json" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "x.mp4").exists()
