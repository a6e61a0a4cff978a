"""SenseVoice rich tags: the four query frames and the `<|…|>` strings they decode to.

SenseVoiceSmall answers four query frames before the text: language (frame 0), emotion (frame 1),
event (frame 2) and text normalisation (frame 3), e.g. `<|en|><|HAPPY|><|Laughter|><|withitn|>hi`.
This module names those tag families, parses raw strings into records and renders records back,
both as raw strings and in the display form of funasr's `rich_transcription_postprocess`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

LANGUAGES = ("zh", "en", "yue", "ja", "ko", "nospeech")
EMOTIONS = ("HAPPY", "SAD", "ANGRY", "NEUTRAL", "FEARFUL", "DISGUSTED", "SURPRISED", "EMO_UNKNOWN")
EVENTS = (
    "Speech", "BGM", "Applause", "Laughter", "Cry", "Sneeze", "Breath", "Cough", "Sing",
    "Speech_Noise", "Event_UNK",
)
TEXT_NORMS = ("withitn", "woitn")
OTHER_TAGS = ("GBG",)
FAMILIES = {"language": LANGUAGES, "emotion": EMOTIONS, "event": EVENTS}
# Which CTC output frame answers which query (SenseVoiceSmall.inference concatenates
# [language, event-emotion(1, 2), text-norm] before the speech frames).
QUERY_FRAME = {"language": 0, "emotion": 1, "event": 2, "textnorm": 3}
ALL_TAGS = LANGUAGES + EMOTIONS + EVENTS + TEXT_NORMS + OTHER_TAGS

_TAG_RE = re.compile(r"<\|([^|<>]+)\|>")

# Display form, as funasr.utils.postprocess_utils renders it.
_EVENT_EMOJI = {
    "BGM": "🎼", "Applause": "👏", "Laughter": "😀", "Cry": "😭", "Sneeze": "🤧", "Cough": "😷",
}
_EVENT_EMOJI_PREFIX = {  # the per-segment prefix uses one table, where Cough shows as 🤧
    "BGM": "🎼", "Applause": "👏", "Laughter": "😀", "Cry": "😭", "Sneeze": "🤧", "Cough": "🤧",
}
_EMO_EMOJI = {
    "HAPPY": "😊", "SAD": "😔", "ANGRY": "😡", "FEARFUL": "😰", "DISGUSTED": "🤢", "SURPRISED": "😮",
}


def emotion_emoji(name: str | None) -> str:
    """How funasr's rich_transcription_postprocess shows an emotion ("" for neutral or unknown)."""
    return _EMO_EMOJI.get(name or "", "")


def event_emoji(name: str | None) -> str:
    """How funasr's rich_transcription_postprocess shows an event ("" for speech or none)."""
    return _EVENT_EMOJI.get(name or "", "")


def tag(name: str) -> str:
    """The raw token for a tag name: `tag("en") == "<|en|>"`."""
    return f"<|{name}|>"


@dataclass(frozen=True, slots=True)
class RichSegment:
    """One run of a SenseVoice output: the tags before its text, as columns, and the text.

    A new segment starts at each language tag (as in funasr's post-processor). The first tag of
    each family fills its column; `tags` keeps every tag name in the order it came.
    """

    language: str | None = None
    emotion: str | None = None
    event: str | None = None
    textnorm: str | None = None
    text: str = ""
    tags: tuple[str, ...] = field(default=())

    def to_raw(self) -> str:
        """The raw rich string: the tags in their original order, then the text."""
        return "".join(tag(t) for t in self.tags) + self.text


def _family_of(name: str) -> str | None:
    for family, names in (("language", LANGUAGES), ("emotion", EMOTIONS), ("event", EVENTS),
                          ("textnorm", TEXT_NORMS)):
        if name in names:
            return family
    return None


def parse_rich(raw: str) -> list[RichSegment]:
    """Split a raw SenseVoice string into segments, one per language tag."""
    segments: list[dict] = []
    pos = 0
    for match in _TAG_RE.finditer(raw):
        _append_text(segments, raw[pos:match.start()])
        name, pos = match.group(1), match.end()
        family = _family_of(name)
        if not segments or family == "language":
            segments.append(_empty_segment())
        current = segments[-1]
        if family and current[family] is None:
            current[family] = name
        current["tags"] += (name,)
    _append_text(segments, raw[pos:])
    return [RichSegment(**s) for s in segments]


def _empty_segment() -> dict:
    return {"language": None, "emotion": None, "event": None, "textnorm": None, "text": "",
            "tags": ()}


def _append_text(segments: list[dict], text: str) -> None:
    if text:
        if not segments:
            segments.append(_empty_segment())
        segments[-1]["text"] += text


def to_raw(segments: list[RichSegment]) -> str:
    """Join segments back into one raw rich string."""
    return "".join(s.to_raw() for s in segments)


def strip_tags(raw: str) -> str:
    """Plain text with every `<|…|>` tag removed."""
    return _TAG_RE.sub("", raw).strip()


def display_text(segments: list[RichSegment] | str) -> str:
    """Render segments (or a raw string) the way funasr's `rich_transcription_postprocess` does.

    Event emoji lead each segment, the dominant emotion's emoji trails it, consecutive segments
    sharing an event or emotion show it once. The tags themselves survive in `parse_rich`.
    """
    raw = segments if isinstance(segments, str) else to_raw(segments)
    raw = raw.replace("<|nospeech|><|Event_UNK|>", "❓")
    parts = re.split(r"<\|(?:%s)\|>" % "|".join(LANGUAGES), raw)
    rendered = [_render_part(p).strip(" ") for p in parts]
    out = " " + rendered[0]
    current_event = _leading_event(out)
    for part in rendered[1:]:
        if not part:
            continue
        if _leading_event(part) is not None and _leading_event(part) == current_event:
            part = part[1:]
        if not part:
            continue
        current_event = _leading_event(part)
        if _trailing_emotion(part) is not None and _trailing_emotion(part) == _trailing_emotion(out):
            out = out[:-1]
        out += part.strip()
    return out.replace("The.", " ").strip()


_EVENT_CHARS = set(_EVENT_EMOJI.values()) | set(_EVENT_EMOJI_PREFIX.values())
_EMO_CHARS = set(_EMO_EMOJI.values())


def _leading_event(s: str) -> str | None:
    return s[0] if s and s[0] in _EVENT_CHARS else None


def _trailing_emotion(s: str) -> str | None:
    return s[-1] if s and s[-1] in _EMO_CHARS else None


def _render_part(s: str) -> str:
    counts: dict[str, int] = {}
    for name in ALL_TAGS:
        counts[name] = s.count(tag(name))
        s = s.replace(tag(name), "")
    emotion = "NEUTRAL"
    for name in ("HAPPY", "SAD", "ANGRY", "NEUTRAL", "FEARFUL", "DISGUSTED", "SURPRISED"):
        if counts[name] > counts[emotion]:
            emotion = name
    for name in ("BGM", "Speech", "Applause", "Laughter", "Cry", "Sneeze", "Breath", "Cough"):
        if counts[name] > 0:
            s = _EVENT_EMOJI_PREFIX.get(name, "") + s
    s += _EMO_EMOJI.get(emotion, "")
    for emoji in _EVENT_CHARS | _EMO_CHARS:
        s = s.replace(" " + emoji, emoji).replace(emoji + " ", emoji)
    return s.strip()
