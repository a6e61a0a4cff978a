"""Transcription of speech chunks: funasr-identical raw text, display text, token timestamps."""

import numpy as np
import pytest
from funasr.utils.postprocess_utils import rich_transcription_postprocess

from laughtrack.synthetic import synth
from sensevoice_core import transcribe

SR = 16_000


@pytest.fixture(scope="module")
def speech():
    timeline = synth.parse_timeline({"duration_s": 12.0, "seed": 5, "segments": [
        {"start_s": 0.0, "end_s": 5.0, "kind": "speech"}, {"start_s": 5.0, "end_s": 12.0, "kind": "speech"}]})
    return synth.render(timeline)


@pytest.fixture(scope="module")
def transcripts(sv_torch, speech):
    audio, _ = speech
    return transcribe(sv_torch, [(0.0, audio[: 5 * SR]), (5.0, audio[5 * SR:])], use_itn=False)


def test_tags_and_text_of_speech(transcripts):
    for t in transcripts:
        assert (t.language, t.event) == ("en", "Speech")
        assert t.raw_text.startswith("<|en|><|NEUTRAL|><|Speech|><|woitn|>")
        assert t.text == rich_transcription_postprocess(t.raw_text)


def test_raw_text_is_what_funasr_generate_returns(sv_torch, speech, transcripts):
    from funasr import AutoModel
    auto = AutoModel(model=str(sv_torch.model_dir), disable_update=True, device="cpu", disable_pbar=True)
    auto.kwargs["frontend"].dither = 0.0
    audio, _ = speech
    out = auto.generate(input=audio[5 * SR:], language="auto", use_itn=False, disable_pbar=True)
    assert out[0]["text"] == transcripts[1].raw_text


def test_token_times_are_ordered_and_inside_their_chunk(transcripts):
    for t in transcripts:
        assert t.tokens, "speech should produce tokens"
        starts = [tok.start_s for tok in t.tokens]
        assert starts == sorted(starts)
        assert all(t.start_s <= tok.start_s <= tok.end_s <= t.end_s for tok in t.tokens)


def test_transcript_syllables_match_what_was_said(transcripts, speech):
    _, words = speech
    said = "".join(w for _, _, w in words)
    heard = "".join(tok.text for t in transcripts for tok in t.tokens if tok.text != "▁")
    # a tiny model: judge by syllable overlap, not exact words
    said_syl = [said[i:i + 2] for i in range(0, len(said), 2)]
    heard_syl = [heard[i:i + 2] for i in range(0, len(heard), 2)]
    common = sum(min(said_syl.count(s), heard_syl.count(s)) for s in set(said_syl))
    assert common / len(said_syl) >= 0.5


def test_results_keep_input_order_across_length_sorted_batches(sv, speech):
    audio, _ = speech
    chunks = [(0.0, audio[:SR]), (1.0, audio[SR:6 * SR]), (6.0, audio[6 * SR:8 * SR])]
    out = transcribe(sv, chunks, batch_size=2)
    assert [t.start_s for t in out] == [0.0, 1.0, 6.0]
    assert [t.end_s for t in out] == [1.0, 6.0, 8.0]


def test_chunks_over_30_s_are_refused(sv):
    with pytest.raises(ValueError, match="30 s"):
        transcribe(sv, [(0.0, np.zeros(31 * SR, np.float32))])


def test_in_a_group_a_stream_whose_audio_is_gone_fails_alone(sv, speech, tmp_path):
    """tasks.model: the transcribe step of a run of streams gives that stream its exception."""
    from types import SimpleNamespace

    from laughtrack.params import AnalysisParams
    from tasks.model import _transcribe_group
    audio = speech if isinstance(speech, np.ndarray) else speech[0]
    pcm = tmp_path / "a.s16"
    pcm.write_bytes((np.clip(audio[: 3 * SR], -1, 1) * 32767).astype("<i2").tobytes())
    out = [[], []]
    engine, params = SimpleNamespace(transcribe_batch=8), AnalysisParams()
    for group in ([(0, 0, 2000)], [(1, 0, 2000)], [(1, 2000, 3000)]):
        _transcribe_group(sv, group, [str(pcm), str(tmp_path / "gone.s16")], engine, params, out)
    assert len(out[0]) == 1 and out[0][0].end_s == 2.0
    assert isinstance(out[1], OSError)      # the stream failed (a list of transcripts had it not)
