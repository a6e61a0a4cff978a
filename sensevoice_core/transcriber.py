"""Transcribe speech chunks (batched): rich raw text, tags, display text, token times.

A chunk may be up to MAX_CHUNK_S long; laughtrack cuts speech into chunks of at most 15 s
(laughtrack/events.py `speech_chunks`, the seed's merge_length_s), which transcribe faster.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import groupby

import numpy as np

from sensevoice_core.model import SenseVoice
from sensevoice_core.profile import CLOCK
from sensevoice_core.scanner import LANGUAGE_QUERY, QUERY_FRAMES, SAMPLE_RATE, TEXTNORM_QUERY, count_work, features
from sensevoice_core.tags import display_text, parse_rich

MAX_CHUNK_S = 30.0


@dataclass(frozen=True, slots=True)
class Token:
    """One emitted text token and the span of CTC frames that emitted it, in seconds."""

    text: str
    start_s: float
    end_s: float


@dataclass(frozen=True, slots=True)
class Transcript:
    """The model's answer for one chunk, with times relative to the whole audio."""

    start_s: float
    end_s: float
    language: str | None
    emotion: str | None
    event: str | None
    raw_text: str      # `<|en|><|NEUTRAL|><|Speech|><|woitn|>…`, as funasr's generate() returns it
    text: str          # display form, identical to funasr's rich_transcription_postprocess
    tokens: tuple[Token, ...]


def transcribe(model: SenseVoice, chunks: Sequence[tuple[float, np.ndarray]], language: str = "auto",
               use_itn: bool = True, batch_size: int = 8) -> list[Transcript]:
    """Transcribe (start_s, samples) chunks; results come back in the order given."""
    if language not in LANGUAGE_QUERY:
        raise ValueError(f"language must be one of {sorted(LANGUAGE_QUERY)}, got {language!r}")
    for start, samples in chunks:
        if len(samples) > MAX_CHUNK_S * SAMPLE_RATE + 1:
            raise ValueError(f"chunk at {start:.2f} s is {len(samples) / SAMPLE_RATE:.1f} s long; "
                             f"split speech into chunks of at most {MAX_CHUNK_S:.0f} s")
    order = sorted(range(len(chunks)), key=lambda i: -len(chunks[i][1]))  # length-sorted batches
    results: dict[int, Transcript] = {}
    for b in range(0, len(order), batch_size):
        idx = order[b:b + batch_size]
        for i, t in zip(idx, _transcribe_batch(model, [chunks[i] for i in idx], language, use_itn)):
            results[i] = t
    return [results[i] for i in range(len(chunks))]


def _transcribe_batch(model: SenseVoice, chunks, language: str, use_itn: bool) -> list[Transcript]:
    with CLOCK("features"):     # on the model's device
        feats = features(model, [np.asarray(s, np.float32) for _, s in chunks])
    count_work(feats)
    with CLOCK("model"):
        x, lengths = model.frontend.batch(feats)
        enc = model.runner(x, lengths, (LANGUAGE_QUERY[language], 1, 2,
                                        TEXTNORM_QUERY["withitn" if use_itn else "woitn"]))
    frame_s = model.frontend.frame_shift * model.frontend.lfr_n / 1000
    out = []
    for j, (start, samples) in enumerate(chunks):
        path = enc.ids[j, : int(enc.lengths[j])].tolist()
        ids = [t for t, _ in groupby(path) if t != model.blank_id]
        raw = model.tokenizer.decode(ids)
        segs = parse_rich(raw)
        head = segs[0] if segs else None
        end = start + len(samples) / SAMPLE_RATE
        out.append(Transcript(
            start_s=start, end_s=end,
            language=head.language if head else None, emotion=head.emotion if head else None,
            event=head.event if head else None, raw_text=raw, text=display_text(raw),
            tokens=_tokens(model, path[QUERY_FRAMES:], start, end, frame_s)))
    return out


def _tokens(model: SenseVoice, path: list[int], offset: float, end: float, frame_s: float) -> tuple[Token, ...]:
    """Each run of one non-blank id on the greedy path is one token; its frames give its time."""
    tokens, frame = [], 0
    for token_id, run in groupby(path):
        n = len(list(run))
        if token_id != model.blank_id:
            piece = model.tokenizer.sp.id_to_piece(int(token_id))
            # funasr's convention: a frame's time is its centre, 30 ms before its end.
            a = max(frame * frame_s - frame_s / 2, 0.0)
            b = (frame + n) * frame_s - frame_s / 2
            tokens.append(Token(piece, round(offset + a, 3), round(min(offset + b, end), 3)))
        frame += n
    return tuple(tokens)
