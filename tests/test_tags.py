"""The rich-tag parser against funasr's own post-processor."""

import pytest
from funasr.utils.postprocess_utils import rich_transcription_postprocess

from sensevoice_core.tags import display_text, parse_rich, strip_tags, to_raw

RAW_TABLE = [
    "<|en|><|HAPPY|><|Laughter|><|withitn|>That was funny.",
    "<|en|><|NEUTRAL|><|Speech|><|woitn|>hello world",
    "<|nospeech|><|EMO_UNKNOWN|><|Applause|><|woitn|>",
    "<|nospeech|><|Event_UNK|>",
    "<|zh|><|SAD|><|Cry|><|withitn|>我很难过。<|en|><|SAD|><|Cry|><|withitn|>so sad",
    "<|en|><|ANGRY|><|Cough|><|woitn|>cough cough",
    "<|en|><|NEUTRAL|><|Sneeze|><|woitn|>bless",
    "<|ja|><|SURPRISED|><|Sneeze|><|withitn|>えっ",
    "<|en|><|HAPPY|><|BGM|><|withitn|>music <|en|><|HAPPY|><|Laughter|><|withitn|>and laughs",
    "<|en|><|HAPPY|><|Laughter|><|withitn|>ha<|en|><|HAPPY|><|Laughter|><|withitn|>ha",
    "plain text without tags",
    "<|en|><|NEUTRAL|><|Speech|><|withitn|>The. end",
    "<|yue|><|EMO_UNKNOWN|><|Sing|><|woitn|>la la",
    "<|ko|><|FEARFUL|><|Breath|><|woitn|>",
    "<|en|><|HAPPY|><|HAPPY|><|SAD|><|Laughter|><|withitn|>x",
    "<|en|><|DISGUSTED|><|Speech_Noise|><|GBG|>ugh",
    "<|nospeech|><|EMO_UNKNOWN|><|Event_UNK|><|woitn|>",
    "<|en|><|NEUTRAL|><|Applause|><|woitn|>thanks <|en|><|HAPPY|><|Applause|><|woitn|>again",
]


@pytest.mark.parametrize("raw", RAW_TABLE)
def test_display_text_from_records_equals_funasr(raw):
    assert display_text(parse_rich(raw)) == rich_transcription_postprocess(raw)


@pytest.mark.parametrize("raw", RAW_TABLE)
def test_records_round_trip_to_the_raw_string(raw):
    assert to_raw(parse_rich(raw)) == raw


def test_tags_become_columns_even_where_emoji_collapse_them():
    cough, sneeze = parse_rich(RAW_TABLE[5])[0], parse_rich(RAW_TABLE[6])[0]
    # funasr's display shows both as 🤧; the records keep them apart
    assert display_text(RAW_TABLE[5])[0] == display_text(RAW_TABLE[6])[0] == "🤧"
    assert (cough.event, sneeze.event) == ("Cough", "Sneeze")
    assert (cough.language, cough.emotion, cough.textnorm, cough.text) == ("en", "ANGRY", "woitn", "cough cough")


def test_a_language_tag_starts_a_new_segment():
    segs = parse_rich(RAW_TABLE[4])
    assert [(s.language, s.event, s.text) for s in segs] == [("zh", "Cry", "我很难过。"), ("en", "Cry", "so sad")]


def test_strip_tags():
    assert strip_tags(RAW_TABLE[0]) == "That was funny."
