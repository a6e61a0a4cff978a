"""Scan a whole timeline in short windows and read SenseVoice's own tag probabilities.

For every window the model's CTC output at query frames 0, 1 and 2 is a distribution over the
whole vocabulary; restricting it to the language, emotion and event tokens and renormalising each
family gives that family's softmax. Every sample of the audio is inside some window, the tail
after the last speech included.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from sensevoice_core.backends import QUERY_FRAMES
from sensevoice_core.errors import AudioInputError
from sensevoice_core.model import SenseVoice
from sensevoice_core.options import LANGUAGE_QUERY, SAMPLE_RATE, TEXTNORM_QUERY, ScanOptions
from sensevoice_core.profile import CLOCK
from sensevoice_core.stream import Window, stream_windows



@dataclass(frozen=True)
class ScanResult:
    """Columnar per-window output; row i is window [start_s[i], end_s[i])."""

    start_s: np.ndarray                 # float64 [N]
    end_s: np.ndarray                   # float64 [N]
    probs: dict[str, np.ndarray]        # family → float32 [N, K], rows sum to 1
    names: dict[str, tuple[str, ...]]   # family → K tag names, the columns of probs[family]
    text: list[str]                     # greedy CTC text of each window (tags excluded)

    def __len__(self) -> int:
        return len(self.start_s)

    def tags(self, family: str) -> list[str]:
        """The most probable tag of `family` in each window."""
        names = self.names[family]
        return [names[i] for i in self.probs[family].argmax(axis=1)]

    def prob(self, family: str, name: str) -> np.ndarray:
        """P(tag `name`) per window, 0 where the vocabulary lacks that tag."""
        if name not in self.names[family]:
            return np.zeros(len(self), np.float32)
        return self.probs[family][:, self.names[family].index(name)]


def _as_mono_float(chunk) -> np.ndarray:
    arr = np.asarray(chunk)
    if arr.ndim != 1:
        raise AudioInputError(f"audio must be mono 1-D samples, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise AudioInputError(f"audio must be float samples in [-1, 1], got {arr.dtype}")
    return arr.astype(np.float32, copy=False)


def features(model: SenseVoice, windows: list[np.ndarray]) -> list:
    """WavFrontend features (fbank → LFR → CMVN) of each window from its own samples, exactly as
    funasr computes them (on the model's device)."""
    return model.frontend.window_features(windows)


def greedy_ids(ids: np.ndarray, length: int, blank: int) -> list[int]:
    """Greedy CTC token ids of the text frames (after the four query frames), from per-frame argmax ids."""
    return greedy_paths(np.asarray(ids)[None], np.asarray([length]), blank)[0]


def greedy_paths(ids: np.ndarray, lengths: np.ndarray, blank: int) -> list[list[int]]:
    """`greedy_ids` of every row at once: [B, 4 + T] argmax ids and [B] lengths → token ids per row."""
    frames = np.asarray(ids)[:, QUERY_FRAMES:]
    if not frames.size:
        return [[] for _ in range(len(ids))]
    valid = np.arange(frames.shape[1])[None, :] < (np.asarray(lengths) - QUERY_FRAMES)[:, None]
    changed = np.concatenate([np.ones((len(frames), 1), bool), frames[:, 1:] != frames[:, :-1]], axis=1)
    keep = valid & changed & (frames != blank)
    return [frames[i, keep[i]].tolist() for i in range(len(frames))]


def family_softmax(logp: np.ndarray) -> np.ndarray:
    """Each row's distribution over one family's tokens: the model's log-probs there [B, K], renormalised."""
    x = np.asarray(logp, np.float32)
    if not x.shape[1]:
        return x
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def scan(model: SenseVoice, audio: np.ndarray | Iterable[np.ndarray],
         options: ScanOptions = ScanOptions()) -> ScanResult:
    """Tag probabilities for every window over the whole of `audio` (16 kHz mono float32)."""
    return scan_many(model, [audio], options)[0]


def scan_many(model: SenseVoice, audios: Sequence[np.ndarray | Iterable[np.ndarray]],
              options: ScanOptions = ScanOptions(), prefetch: bool = True) -> list[ScanResult]:
    """`scan` of several streams at once; windows of consecutive streams share model batches when
    the backend is batch-invariant (torch). On onnx-int8, whose activation scales are per batch,
    each stream gets batches of its own, so a stream's numbers never depend on the other files.

    Features are computed once per stream on the model's device and gathered per window
    (stream.py). With `prefetch`, a background thread reads the audio and computes the next
    batch's features while the model runs the current one (the model stays with the calling thread).
    """
    options = options.validate()
    outs = [_Collector(model) for _ in audios]
    share = getattr(model.runner, "batch_invariant", True)
    stride = options.window_s if options.adaptive else options.hop_s   # adaptive: even windows first
    batches = _batches(model, audios, options, share, stride)
    refiner = _Refiner(model, options, outs, share) if options.adaptive else None
    for batch in (prefetched(batches) if prefetch else batches):
        probs = _run_batch(model, batch, options, outs)
        if refiner:
            refiner.add(batch, probs)
    if refiner:
        refiner.flush()
    return [c.result(model) for c in outs]


class _Refiner:
    """Adaptive scan: queues the odd window between two even ones that disagree, runs them in batches
    (their features were gathered with the even windows, on the model's device)."""

    def __init__(self, model: SenseVoice, options: ScanOptions, outs, share: bool):
        self.model, self.options, self.outs, self.share = model, options, outs, share
        self.window = round(options.window_s * SAMPLE_RATE)
        self.half = self.window // 2
        self.last: dict[int, tuple[int, np.ndarray, int]] = {}  # stream → previous even window
        self.pending: list[tuple[int, Window]] = []

    def add(self, batch: list[tuple[int, Window]], probs: dict[str, np.ndarray]) -> None:
        event, emotion = probs.get("event"), probs.get("emotion")
        emos = emotion.argmax(axis=1) if emotion is not None and emotion.shape[1] else None
        for i, (k, w) in enumerate(batch):
            p_event = event[i] if event is not None else np.zeros(0)
            emo = int(emos[i]) if emos is not None else -1
            prev = self.last.get(k)
            if (prev is not None and prev[0] + self.window == w.start and w.length == self.window
                    and w.between is not None and self._differ(prev[1], prev[2], p_event, emo)):
                self._queue(k, Window(prev[0] + self.half, self.window, w.between))
            self.last[k] = (w.start, p_event, emo)

    def _differ(self, p_a: np.ndarray, emo_a: int, p_b: np.ndarray, emo_b: int) -> bool:
        if emo_a != emo_b or (len(p_a) and p_a.argmax() != p_b.argmax()):
            return True
        return bool(len(p_a) and np.abs(p_a - p_b).max() >= self.options.refine_delta)

    def _queue(self, k: int, window: Window) -> None:
        if self.pending and not self.share and self.pending[0][0] != k:
            self.flush()
        self.pending.append((k, window))
        if len(self.pending) == self.options.batch_size:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            batch, self.pending = self.pending, []
            _run_batch(self.model, batch, self.options, self.outs)


def _batches(model: SenseVoice, audios, options: ScanOptions, share: bool,
             stride_s: float) -> Iterator[list[tuple[int, Window]]]:
    """Batches of (stream, window with its features), windows every `stride_s`, in stream and time
    order; `share`: a batch may hold windows of several streams."""
    window = round(options.window_s * SAMPLE_RATE)
    stride = round(stride_s * SAMPLE_RATE)
    batch: list[tuple[int, Window]] = []
    for k, audio in enumerate(audios):
        chunks = (_as_mono_float(c) for c in ([audio] if isinstance(audio, np.ndarray) else audio))
        for w in _timed(stream_windows(model.frontend, chunks, window, stride, between=options.adaptive)):
            batch.append((k, w))
            if len(batch) == options.batch_size:
                yield batch
                batch = []
        if batch and not share:
            yield batch
            batch = []
    if batch:
        yield batch


def _timed(windows: Iterator[Window]) -> Iterator[Window]:
    """The windows, their feature time on the stage clock (decoding included)."""
    while True:
        with CLOCK("features"):
            w = next(windows, None)
        if w is None:
            return
        yield w


def count_work(feats: list[np.ndarray]) -> None:
    """Model passes (one per window or chunk) and frames (query frames included) for the benchmarks."""
    CLOCK.count("model passes", len(feats))
    CLOCK.count("model frames", sum(len(f) + QUERY_FRAMES for f in feats))


def prefetched(items: Iterable, depth: int = 2) -> Iterator:
    """Iterate `items` produced by a background thread, up to `depth` ahead; errors re-raised here."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        q.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put((done, None))
        except BaseException as exc:  # noqa: BLE001 — handed to the consumer
            q.put((done, exc))

    thread = threading.Thread(target=produce, name="scan-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item, exc = q.get()
            if item is done:
                if exc is not None:
                    raise exc
                return
            yield item
    finally:
        stop.set()
        thread.join()


class _Collector:
    """Accumulates one stream's per-window rows across batches."""

    def __init__(self, model: SenseVoice):
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.texts: list[str] = []
        self.probs: dict[str, list[np.ndarray]] = {f: [] for f in model.families}

    def result(self, model: SenseVoice) -> ScanResult:
        fams = model.families
        order = np.lexsort((np.asarray(self.ends), np.asarray(self.starts)))  # adaptive windows come late
        return ScanResult(
            start_s=np.asarray(self.starts, np.float64)[order] / SAMPLE_RATE,
            end_s=np.asarray(self.ends, np.float64)[order] / SAMPLE_RATE,
            probs={f: (np.concatenate(p)[order] if p else np.zeros((0, len(fams[f].names)), np.float32))
                   for f, p in self.probs.items()},
            names={f: fams[f].names for f in fams}, text=[self.texts[i] for i in order])


def _run_batch(model: SenseVoice, batch: list[tuple[int, Window]], options: ScanOptions,
               outs: list[_Collector]) -> dict[str, np.ndarray]:
    """Run one batch into the collectors; returns each family's probabilities in batch order."""
    order = sorted(range(len(batch)), key=lambda i: -len(batch[i][1].feats))  # length-sorted: least padding
    feats = [batch[i][1].feats for i in order]
    count_work(feats)
    with CLOCK("model"):
        x, lengths = model.frontend.batch(feats)
        enc = model.runner(x, lengths, (LANGUAGE_QUERY[options.language], 1, 2,
                                        TEXTNORM_QUERY["withitn" if options.use_itn else "woitn"]), model.tag_queries)
    restore = np.argsort(order)  # batch item i sits in row restore[i] of the model output
    family_probs = {f: family_softmax(enc.tag_logp[f])[restore] for f in model.families}
    paths = greedy_paths(enc.ids[restore], enc.lengths[restore], model.blank_id)
    for k in dict.fromkeys(k for k, _ in batch):  # batch items are in stream, time order
        items = [i for i in range(len(batch)) if batch[i][0] == k]
        out = outs[k]
        for i in items:
            w = batch[i][1]
            out.starts.append(w.start)
            out.ends.append(w.start + w.length)
            out.texts.append(model.tokenizer.decode(paths[i]))
        for family, p in family_probs.items():
            out.probs[family].append(p[items])
    return family_probs
