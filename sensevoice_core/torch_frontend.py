"""funasr's WavFrontend recipe on a torch device: lhotse's Kaldi-compatible log-mel filterbank,
then LFR and CMVN as torch ops, so the features of a CUDA scan never leave the GPU.

torchaudio, which funasr would use, does not load beside the pinned torch (2.13); lhotse's
`Wav2LogFilterBank` is a maintained torch implementation of Kaldi's fbank (frame by frame DC
removal and pre-emphasis, povey/hamming windows, Kaldi's mel banks), configured here exactly as
funasr configures kaldi-native-fbank (sensevoice_core/frontend.py `_options`). Its features equal
the numpy recipe within 1e-3 (tests/test_stream.py).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from sensevoice_core.frontend import MIN_SAMPLES, UPSCALE, Frontend
from sensevoice_core.stream import FRAME_LENGTH, FRAME_SHIFT, frames_in, lfr_index

CHUNK_FRAMES = 6000         # frames per fbank call on a long input (60 s): bounded memory


class TorchFrontend:
    """The same interface as `Frontend` (window_features, producer, features_of, batch), on `device`."""

    def __init__(self, base: Frontend, device: str | torch.device):
        from lhotse.features.kaldi.layers import Wav2LogFilterBank
        self.base, self.device = base, torch.device(device)
        self.lfr_m, self.lfr_n, self.frame_shift, self.dim = base.lfr_m, base.lfr_n, base.frame_shift, base.dim
        with warnings.catch_warnings():          # lhotse warns that snip_edges suits its own data poorly
            warnings.simplefilter("ignore")
            self.layer = Wav2LogFilterBank(
                sampling_rate=base.fs, frame_length=base.frame_length / 1000, frame_shift=base.frame_shift / 1000,
                round_to_power_of_two=True, remove_dc_offset=True, preemph_coeff=0.97, window_type=base.window,
                dither=0.0, snip_edges=True, use_energy=False, use_fft_mag=False, low_freq=20.0, high_freq=0.0,
                num_filters=base.n_mels, norm_filters=False, torchaudio_compatible_mel_scale=True,
            ).to(self.device).eval()
        self.shift = torch.as_tensor(base.shift, device=self.device)
        self.rescale = torch.as_tensor(base.rescale, device=self.device)
        self._rows: dict[int, torch.Tensor] = {}

    @torch.inference_mode()
    def fbank(self, samples) -> torch.Tensor:
        """float32 [frames, n_mels] on the device, in slices of CHUNK_FRAMES frames."""
        x = torch.as_tensor(np.asarray(samples, np.float32), device=self.device) * UPSCALE
        n = frames_in(len(x))
        out = []
        for first in range(0, n, CHUNK_FRAMES):
            count = min(CHUNK_FRAMES, n - first)
            a = first * FRAME_SHIFT
            out.append(self.layer(x[a:a + (count - 1) * FRAME_SHIFT + FRAME_LENGTH][None])[0])
        return torch.cat(out) if out else torch.zeros((0, self.base.n_mels), device=self.device)

    def window_features(self, windows: list[np.ndarray]) -> list[torch.Tensor]:
        """Each window's (or chunk's) features from its own samples, on the device."""
        out = []
        for w in windows:
            frames = self.fbank(np.pad(np.asarray(w, np.float32), (0, max(0, MIN_SAMPLES - len(w)))))
            idx = torch.as_tensor(lfr_index(len(frames), self.lfr_m, self.lfr_n), device=self.device)
            out.append(self.features_of(frames, idx[None])[0])
        return out

    def producer(self) -> TorchFrames:
        return TorchFrames(self)

    @staticmethod
    def concat(parts: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(parts)

    def lfr_rows(self, n_frames: int) -> np.ndarray:
        return lfr_index(n_frames, self.lfr_m, self.lfr_n)

    @torch.inference_mode()
    def features_of(self, frames: torch.Tensor, idx) -> torch.Tensor:
        """[B, T', m · n_mels]: LFR rows gathered from `frames` by `idx` [B, T', m], then CMVN."""
        idx = torch.as_tensor(idx, device=self.device)
        stacked = frames[idx].reshape(idx.shape[0], idx.shape[1], -1)
        d = stacked.shape[2]
        return (stacked + self.shift[:d]) * self.rescale[:d]

    def batch(self, feats: list) -> tuple[torch.Tensor, torch.Tensor]:
        """([B, T_max, D] zero-padded on the device, [B] int64 lengths) for a runner."""
        feats = [torch.as_tensor(f, device=self.device) for f in feats]
        lengths = torch.tensor([len(f) for f in feats], dtype=torch.int64, device=self.device)
        if len({len(f) for f in feats}) == 1:
            return torch.stack(feats), lengths
        return torch.nn.utils.rnn.pad_sequence(feats, batch_first=True), lengths


class TorchFrames:
    """One stream's frames on the device, fed chunk by chunk: each call computes the frames its
    samples complete, keeping the < 25 ms of samples a next frame still needs."""

    def __init__(self, frontend: TorchFrontend):
        self.frontend = frontend
        self.pending = np.zeros(0, np.float32)

    def feed(self, samples: np.ndarray) -> torch.Tensor:
        self.pending = np.concatenate([self.pending, np.asarray(samples, np.float32)])
        n = frames_in(len(self.pending))
        frames = self.frontend.fbank(self.pending[:(n - 1) * FRAME_SHIFT + FRAME_LENGTH] if n else self.pending[:0])
        self.pending = self.pending[n * FRAME_SHIFT:]
        return frames
