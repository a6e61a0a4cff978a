"""How a scan cuts the timeline, and the query rows it asks the model with. No torch: a
configuration can be built and checked before the model is anywhere near."""

from __future__ import annotations

from dataclasses import dataclass

SAMPLE_RATE = 16_000  # Hz
# SenseVoiceSmall.lid_dict / textnorm_dict: query-embedding rows, not vocabulary ids.
LANGUAGE_QUERY = {"auto": 0, "zh": 3, "en": 4, "yue": 7, "ja": 11, "ko": 12, "nospeech": 13}
# What a user may ask a transcript to be in (the CLI's --language, the page's list), with names.
LANGUAGE_NAMES = {"auto": "auto-detect", "zh": "Chinese", "en": "English", "yue": "Cantonese", "ja": "Japanese",
                  "ko": "Korean"}
TEXTNORM_QUERY = {"withitn": 14, "woitn": 15}


@dataclass(frozen=True, slots=True)
class ScanOptions:
    """How to cut the timeline and batch it.

    `adaptive` (needs window_s = 2 x hop_s): the windows at even multiples of the hop tile the
    timeline and are always run; an odd window (straddling two even ones) is run only where its
    two neighbours disagree — a different event or emotion tag, or an event probability apart by
    `refine_delta` or more. Where they agree the odd window says the same thing, so skipping it
    keeps the hop's resolution at every transition for about half the model work.
    """

    window_s: float = 1.0
    hop_s: float = 0.5
    batch_size: int = 64
    language: str = "auto"
    use_itn: bool = False
    adaptive: bool = False
    refine_delta: float = 0.1

    def validate(self) -> ScanOptions:
        if not 0.1 <= self.window_s <= 30:
            raise ValueError(f"window_s must be in [0.1, 30] s, got {self.window_s}")
        if not 0 < self.hop_s <= self.window_s:
            raise ValueError(f"hop_s must be in (0, window_s={self.window_s}], got {self.hop_s}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.language not in LANGUAGE_QUERY:
            raise ValueError(f"language must be one of {sorted(LANGUAGE_QUERY)}, got {self.language!r}")
        if self.adaptive and round(self.window_s * SAMPLE_RATE) != 2 * round(self.hop_s * SAMPLE_RATE):
            raise ValueError(f"adaptive scanning needs window_s = 2 x hop_s, got {self.window_s}/{self.hop_s}")
        return self
