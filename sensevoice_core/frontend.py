"""SenseVoiceSmall's input side without funasr or torch: features and tokenizer from the model dir.

`Frontend` computes funasr's WavFrontend features (kaldi fbank → low frame rate stacking → CMVN)
with kaldi-native-fbank (the fbank funasr itself calls when torchaudio is absent) and numpy;
tests/test_frontend.py checks it against funasr's WavFrontend bit for bit (funasr uses
kaldi-native-fbank too when torchaudio is absent, as in laughtrack's environment; with torchaudio it
differs in the last float bits). Dither is always 0 (reproducible features). `Tokenizer` is the
model's sentencepiece model. Both load in milliseconds: `import funasr` takes ~15 s.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

UPSCALE = 1 << 15        # funasr scales [-1, 1] samples to 16-bit range before the fbank
MIN_SAMPLES = 400        # one 25 ms fbank frame; shorter audio is zero-padded to this
SUPPORTED = {"snip_edges": True, "upsacle_samples": True, "filter_length_min": -1, "filter_length_max": -1}


@dataclass(frozen=True)
class Frontend:
    """fbank (hamming, no dither) → LFR (m frames stacked every n) → (x + shift) · rescale."""

    shift: np.ndarray        # float32 [m · n_mels]: CMVN add-shift (from am.mvn)
    rescale: np.ndarray      # float32 [m · n_mels]: CMVN rescale
    fs: int = 16000
    n_mels: int = 80
    frame_length: int = 25   # ms
    frame_shift: int = 10    # ms
    lfr_m: int = 7
    lfr_n: int = 6
    window: str = "hamming"

    @classmethod
    def from_model_dir(cls, model_dir: Path, config: dict) -> Frontend:
        conf = config.get("frontend_conf") or {}
        for key, value in SUPPORTED.items():
            if key in conf and conf[key] != value:
                raise ValueError(f"'{Path(model_dir) / 'config.yaml'}': frontend_conf {key}={conf[key]!r} is not "
                                 f"supported (laughtrack computes features as funasr does with {key}={value!r})")
        shift, rescale = load_cmvn(Path(model_dir) / _meta_file(model_dir, "frontend_conf", "cmvn_file", "am.mvn"))
        keys = ("fs", "n_mels", "frame_length", "frame_shift", "lfr_m", "lfr_n", "window")
        return cls(shift=shift, rescale=rescale, **{k: conf[k] for k in keys if k in conf})

    @property
    def dim(self) -> int:
        return self.n_mels * self.lfr_m

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        """float32 [T', m · n_mels] features of 16 kHz samples in [-1, 1] (at least one fbank frame long)."""
        return self.stack(self.fbank(samples))

    # --- the interface the scan and the transcripts use (torch_frontend.py has the same) ---------
    device = "cpu"

    def window_features(self, windows: list[np.ndarray]) -> list[np.ndarray]:
        """Each window's (or chunk's) features from its own samples; shorter than one frame: zero-padded."""
        return [self(np.pad(w, (0, max(0, MIN_SAMPLES - len(w))))) for w in windows]

    def producer(self) -> KnfFrames:
        """A stream's fbank frames, fed chunk by chunk (stream.py)."""
        return KnfFrames(self)

    @staticmethod
    def concat(parts: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(parts)

    def lfr_rows(self, n_frames: int) -> np.ndarray:
        from sensevoice_core.stream import lfr_index
        return lfr_index(n_frames, self.lfr_m, self.lfr_n)

    def features_of(self, frames: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """[B, T', m · n_mels]: LFR rows gathered from `frames` by `idx` [B, T', m], then CMVN."""
        stacked = frames[idx].reshape(idx.shape[0], idx.shape[1], -1)
        return (stacked + self.shift[: stacked.shape[2]]) * self.rescale[: stacked.shape[2]]

    @staticmethod
    def batch(feats: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """([B, T_max, D] zero-padded float32, [B] int64 lengths) for a runner."""
        lengths = np.asarray([len(f) for f in feats], np.int64)
        out = np.zeros((len(feats), int(lengths.max(initial=0)), feats[0].shape[1] if feats else 0), np.float32)
        for i, f in enumerate(feats):
            out[i, : len(f)] = f
        return out, lengths

    def fbank(self, samples: np.ndarray) -> np.ndarray:
        import kaldi_native_fbank as knf
        fb = knf.OnlineFbank(self._options(knf))
        fb.accept_waveform(self.fs, np.asarray(samples, np.float32) * np.float32(UPSCALE))
        fb.input_finished()
        n = fb.num_frames_ready
        if n == 0:
            return np.zeros((0, self.n_mels), np.float32)
        return np.stack([fb.get_frame(i) for i in range(n)]).astype(np.float32, copy=False)

    def stack(self, frames: np.ndarray) -> np.ndarray:
        """LFR as funasr's apply_lfr: (m-1)//2 copies of the first frame in front, the last repeated
        at the end; row i is frames[n·i : n·i + m] side by side. Then CMVN."""
        m, n = self.lfr_m, self.lfr_n
        t = len(frames)
        if t == 0:
            return np.zeros((0, self.dim), np.float32)
        t_lfr = -(-t // n)
        padded = np.concatenate([np.repeat(frames[:1], (m - 1) // 2, axis=0), frames])
        need = (t_lfr - 1) * n + m
        if len(padded) < need:
            padded = np.concatenate([padded, np.repeat(padded[-1:], need - len(padded), axis=0)])
        rows = np.arange(t_lfr)[:, None] * n + np.arange(m)[None, :]
        stacked = padded[rows].reshape(t_lfr, m * self.n_mels)
        return (stacked + self.shift[: stacked.shape[1]]) * self.rescale[: stacked.shape[1]]

    def _options(self, knf):
        opts = knf.FbankOptions()
        frame = opts.frame_opts
        frame.samp_freq, frame.frame_length_ms, frame.frame_shift_ms = float(self.fs), float(self.frame_length), \
            float(self.frame_shift)
        frame.dither, frame.snip_edges, frame.window_type = 0.0, True, self.window
        frame.preemph_coeff, frame.remove_dc_offset, frame.round_to_power_of_two = 0.97, True, True
        opts.mel_opts.num_bins, opts.mel_opts.low_freq, opts.mel_opts.high_freq = self.n_mels, 20.0, 0.0
        opts.energy_floor, opts.raw_energy, opts.use_energy = 0.0, True, False
        opts.use_log_fbank, opts.use_power, opts.htk_compat = True, True, False
        return opts


class KnfFrames:
    """One stream's fbank frames from kaldi-native-fbank's online fbank, fed chunk by chunk: the
    frames equal those of the window-by-window recipe bit for bit (a frame depends only on its own
    samples), and each is computed once."""

    def __init__(self, frontend: Frontend):
        import kaldi_native_fbank as knf
        self.fbank = knf.OnlineFbank(frontend._options(knf))
        self.fs, self.n_mels, self.read = frontend.fs, frontend.n_mels, 0

    def feed(self, samples: np.ndarray) -> np.ndarray:
        """float32 [n, n_mels]: the frames `samples` completed."""
        self.fbank.accept_waveform(self.fs, np.asarray(samples, np.float32) * np.float32(UPSCALE))
        ready = self.fbank.num_frames_ready
        if ready == self.read:
            return np.zeros((0, self.n_mels), np.float32)
        # get_frame views knf's own buffer: copied (np.stack) before pop recycles it
        new = np.stack([self.fbank.get_frame(i) for i in range(self.read, ready)]).astype(np.float32, copy=False)
        self.fbank.pop(ready - self.read)      # knf keeps frames until popped: memory stays bounded
        self.read = ready
        return new


def load_cmvn(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(add-shift, rescale) vectors of a Kaldi nnet am.mvn: the numbers between `[` and `]` on the
    `<LearnRateCoef>` line after `<AddShift>` and after `<Rescale>`."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    found: dict[str, np.ndarray] = {}
    for head, body in zip(lines, lines[1:]):
        words, values = head.split(), body.split()
        if words and words[0] in ("<AddShift>", "<Rescale>") and values and values[0] == "<LearnRateCoef>":
            found[words[0]] = np.asarray(values[3:-1], np.float32)
    if len(found) != 2:
        raise ValueError(f"'{path}' is not a Kaldi am.mvn with <AddShift> and <Rescale>")
    return found["<AddShift>"], found["<Rescale>"]


class Tokenizer:
    """The model's sentencepiece vocabulary (what funasr's SentencepiecesTokenizer wraps)."""

    def __init__(self, bpemodel: Path):
        import sentencepiece as spm
        self.sp = spm.SentencePieceProcessor(model_file=str(bpemodel))

    def decode(self, ids) -> str:
        return self.sp.decode_ids([int(i) for i in ids])

    def get_vocab_size(self) -> int:
        return int(self.sp.get_piece_size())


def tokenizer_file(model_dir: Path, config: dict) -> Path:
    conf = config.get("tokenizer_conf") or {}
    default = conf.get("bpemodel") or "chn_jpn_yue_eng_ko_spectok.bpe.model"
    return Path(model_dir) / _meta_file(model_dir, "tokenizer_conf", "bpemodel", Path(default).name)


def _meta_file(model_dir: Path, section: str, key: str, default: str) -> str:
    """A file name from configuration.json's file_path_metas (where funasr looks first)."""
    try:
        metas = json.loads((Path(model_dir) / "configuration.json").read_text()).get("file_path_metas", {})
        return str(metas.get(section, {}).get(key) or default)
    except (OSError, ValueError, AttributeError):
        return default
