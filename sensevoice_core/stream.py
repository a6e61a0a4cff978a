"""Features once per stream: fbank frames of the whole stream, chunk by chunk, and each window's
rows gathered from them by index.

A window that starts on the 10 ms frame grid covers exactly the stream's frames from its start
(a frame depends only on its own 25 ms of samples: no dither, DC offset and pre-emphasis per
frame), so its LFR rows are the stream's frames at fixed offsets: row i stacks frames
6i-3 … 6i+3 of the window, the first and last frame repeated at the edges (funasr's apply_lfr).
Computing the frames once and gathering replaces a window-by-window fbank (each frame computed
1.5 times in an adaptive scan, and a Python loop per window) with one pass and an index. The
frames kept in memory are bounded by one chunk and one window, whatever the stream's length.

The frontend (sensevoice_core/frontend.py for numpy, torch_frontend.py for a torch device) brings
the arrays: frames, gathers and features stay on the model's device.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

FRAME_LENGTH = 400          # samples in one 25 ms fbank frame at 16 kHz
FRAME_SHIFT = 160           # samples between frames (10 ms)


@dataclass(frozen=True, slots=True)
class Window:
    """One window of one stream with its features (an array on the model's device)."""

    start: int              # sample
    length: int             # samples
    feats: Any              # [T', D]
    between: Any = None     # adaptive scan: the features of the window half a window before this one


def frames_in(samples: int) -> int:
    """fbank frames of `samples` samples (snip_edges: only whole frames)."""
    return 0 if samples < FRAME_LENGTH else 1 + (samples - FRAME_LENGTH) // FRAME_SHIFT


def lfr_index(n_frames: int, m: int, n: int) -> np.ndarray:
    """int64 [ceil(n_frames / n), m]: which of a window's frames each LFR row stacks."""
    rows = -(-n_frames // n)
    return np.clip(np.arange(rows)[:, None] * n + np.arange(m)[None, :] - (m - 1) // 2, 0, n_frames - 1)


class FrameBuffer:
    """The frames of one stream computed so far, minus those no window needs any more."""

    def __init__(self, frontend):
        self.frontend = frontend
        self.first = 0          # stream index of the first frame kept
        self.frames = None      # [F, n_mels] on the frontend's device

    @property
    def end(self) -> int:
        return self.first + (0 if self.frames is None else len(self.frames))

    def extend(self, new) -> None:
        if len(new):
            self.frames = new if self.frames is None else self.frontend.concat([self.frames, new])

    def drop_before(self, frame: int) -> None:
        if self.frames is not None and frame > self.first:
            cut = min(frame - self.first, len(self.frames))
            self.frames, self.first = self.frames[cut:], self.first + cut

    def gather(self, starts: list[int], n_frames: int):
        """[len(starts), T', D]: the LFR + CMVN features of windows of `n_frames` frames starting at
        stream frames `starts`."""
        idx = np.asarray(starts, np.int64)[:, None, None] - self.first + self.frontend.lfr_rows(n_frames)[None]
        return self.frontend.features_of(self.frames, idx)


def stream_windows(frontend, chunks: Iterable[np.ndarray], window: int, stride: int,
                   between: bool = False) -> Iterator[Window]:
    """Every window of a stream every `stride` samples (and one flush with the end), with its
    features; with `between` (an adaptive scan, stride = window), each window but the first also
    carries the features of the window that straddles it and the one before.

    Windows on the 10 ms grid are gathered from the stream's frames; a window off the grid (the
    tail, a clip shorter than one window, or a window/stride that is not a multiple of 10 ms) gets
    its features from its own samples."""
    on_grid = window % FRAME_SHIFT == 0 and stride % FRAME_SHIFT == 0 and window >= FRAME_LENGTH
    n_frames, half = frames_in(window), window // 2
    producer, buffer = frontend.producer(), FrameBuffer(frontend)
    recent, base = np.zeros(0, np.float32), 0   # samples from `base` on: the tail, and windows off the grid
    total, next_start, last_end = 0, 0, 0
    for chunk in chunks:
        chunk = np.asarray(chunk, np.float32)
        total += len(chunk)
        recent = np.concatenate([recent, chunk])
        if on_grid:
            buffer.extend(producer.feed(chunk))
        ready = []
        while next_start + window <= total:
            ready.append(next_start)
            next_start += stride
        if ready and on_grid:
            yield from _gathered(buffer, ready, window, n_frames, half if between else None)
            buffer.drop_before((next_start - half) // FRAME_SHIFT)
        elif ready:
            yield from _from_samples(frontend, recent, base, ready, window, half if between else None)
        last_end = ready[-1] + window if ready else last_end
        keep = max(0, min(next_start - half, total - window))   # what a later window may still need
        recent, base = recent[keep - base:], keep
    if total and last_end < total:            # the tail: one window flush with the end (or a short clip)
        start = max(0, total - window)
        yield Window(start, total - start, frontend.window_features([recent[start - base:]])[0])


def _gathered(buffer: FrameBuffer, starts: list[int], window: int, n_frames: int, half: int | None):
    feats = buffer.gather([s // FRAME_SHIFT for s in starts], n_frames)
    odd = [s - half for s in starts if half is not None and s >= window]
    odd_feats = iter(buffer.gather([s // FRAME_SHIFT for s in odd], n_frames)) if odd else iter(())
    for i, start in enumerate(starts):
        yield Window(start, window, feats[i], next(odd_feats) if half is not None and start >= window else None)


def _from_samples(frontend, recent: np.ndarray, base: int, starts: list[int], window: int, half: int | None):
    """Windows off the frame grid: features from their own samples (the window-by-window recipe)."""
    for start in starts:
        a = start - base
        odd = None
        if half is not None and start >= window:
            odd = frontend.window_features([recent[a - half:a + half]])[0]
        yield Window(start, window, frontend.window_features([recent[a:a + window]])[0], odd)
