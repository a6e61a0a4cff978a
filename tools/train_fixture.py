"""Train the bundled tiny fixture: funasr's SenseVoiceSmall class, a tiny encoder, synthetic audio.

The real SenseVoiceSmall weights cannot be downloaded here, so laughtrack proves its model code
path with a model of the exact same class (funasr `SenseVoiceSmall`, `SenseVoiceEncoderSmall`,
`WavFrontend`, `SentencepiecesTokenizer`), trained with the class's own `forward()` loss (CTC on
the text + cross-entropy on the four query frames) on clips from `laughtrack.synthetic.synth`.

    python tools/train_fixture.py --out sensevoice_core/fixture

Deterministic for a given --seed (one torch thread per op order, seeded numpy and torch).
Prints held-out event/emotion/language accuracy; fails (exit 1) below 97 % event accuracy.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sentencepiece as spm
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from laughtrack.synthetic import synth  # noqa: E402
from sensevoice_core.model import MANIFEST_NAME, write_manifest  # noqa: E402
from sensevoice_core.tags import ALL_TAGS, LANGUAGES, TEXT_NORMS, tag  # noqa: E402

SAMPLE_RATE = synth.SAMPLE_RATE
BPE_NAME = "fixture.bpe.model"
# Class → (language, emotion, event) tags the model learns to answer in its query frames.
LABELS = {
    "speech": ("en", "NEUTRAL", "Speech"),
    "laughter": ("nospeech", "HAPPY", "Laughter"),
    "applause": ("nospeech", "EMO_UNKNOWN", "Applause"),
    "silence": ("nospeech", "EMO_UNKNOWN", "Event_UNK"),
}
CLASSES = tuple(LABELS)
FRONTEND_CONF = {"fs": SAMPLE_RATE, "window": "hamming", "n_mels": 80, "frame_length": 25,
                 "frame_shift": 10, "lfr_m": 7, "lfr_n": 6, "dither": 0.0}
ENCODER_CONF = {"output_size": 128, "attention_heads": 4, "linear_units": 256, "num_blocks": 4,
                "tp_blocks": 1, "dropout_rate": 0.1, "positional_dropout_rate": 0.1,
                "attention_dropout_rate": 0.1, "input_layer": "pe",
                "pos_enc_class": "SinusoidalPositionEncoder", "normalize_before": True,
                "kernel_size": 11, "sanm_shfit": 0, "selfattention_layer_type": "sanm"}


MIN_CLIP_S = 0.6     # SenseVoiceSmall's released config drops shorter clips (min_source_length 60)
OVERLAP_SHARE = 0.3  # share of training clips that mix two sounds at once
# Sounds heard at once, and the event answer the model should give: half of each. One event slot
# can only say "speech, and some laughter" with its probabilities, so that is what it learns.
MIXES = (("speech", "laughter"), ("speech", "applause"), ("laughter", "applause"))


@dataclass(frozen=True, slots=True)
class Clip:
    audio: np.ndarray
    label: str
    text: str
    also: str = ""       # a second class heard at the same time: the event target is half each


def make_clip(rng: np.random.Generator) -> Clip:
    """A clip of 0.6-3.5 s: one class, two in sequence with a clear majority, or two at once."""
    if rng.random() < OVERLAP_SHARE:
        return make_mix(rng)
    length = int(rng.uniform(MIN_CLIP_S, 3.5) * SAMPLE_RATE)
    audio = (rng.standard_normal(length) * synth.NOISE_FLOOR * rng.uniform(0.3, 3)).astype(np.float32)
    label = CLASSES[int(rng.integers(0, len(CLASSES)))]
    words: list[str] = []
    if label != "silence":
        cover = int(length * rng.uniform(0.45, 1.0))
        start = int(rng.integers(0, length - cover + 1))
        part, part_words = synth.render_kind(label, cover, rng)
        audio[start:start + cover] += part * rng.uniform(0.15, 1.0)
        words += [w for _, _, w in part_words]
        rest = length - cover
        if rest > 0.3 * SAMPLE_RATE and rng.random() < 0.3:  # a minority of another class
            other = CLASSES[int(rng.integers(0, 3))]
            span = int(min(rest, cover) * rng.uniform(0.3, 0.8))
            at = int(rng.integers(0, start - span + 1)) if start >= span else start + cover
            extra, extra_words = synth.render_kind(other, min(span, length - at), rng)
            audio[at:at + len(extra)] += extra * rng.uniform(0.15, 0.7)
            words = [w for _, _, w in extra_words] + words if at < start else words + [w for _, _, w in extra_words]
    audio *= rng.uniform(0.2, 1.0)
    np.clip(audio, -1, 1, out=audio)
    return Clip(audio, label, " ".join(words))


def make_mix(rng: np.random.Generator) -> Clip:
    """Two classes at once over most of the clip (laughter under speech, applause over laughter),
    each at its own level, the way an audience sounds under a speaker."""
    length = int(rng.uniform(MIN_CLIP_S, 3.5) * SAMPLE_RATE)
    audio = (rng.standard_normal(length) * synth.NOISE_FLOOR * rng.uniform(0.3, 3)).astype(np.float32)
    base, over = MIXES[int(rng.integers(0, len(MIXES)))]
    words: list[str] = []
    for kind, (lo, hi) in ((base, (0.3, 1.0)), (over, (0.2, 0.8))):
        cover = int(length * rng.uniform(0.75, 1.0))
        start = int(rng.integers(0, length - cover + 1))
        part, part_words = synth.render_kind(kind, cover, rng)
        audio[start:start + cover] += part * rng.uniform(lo, hi)
        words += [w for _, _, w in part_words]
    audio *= rng.uniform(0.3, 1.0)
    np.clip(audio, -1, 1, out=audio)
    return Clip(audio, base, " ".join(words), also=over)


def build_tokenizer(out: Path, seed: int) -> spm.SentencePieceProcessor:
    """A small BPE vocabulary holding every SenseVoice tag and the synthetic syllables."""
    rng = np.random.default_rng([seed, 99])
    lines = [" ".join("".join(synth.SYLLABLES[i] for i in rng.integers(0, 8, rng.integers(1, 4)))
                      for _ in range(8)) for _ in range(2000)]
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=model, model_type="bpe", vocab_size=48,
        hard_vocab_limit=False, user_defined_symbols=[tag(t) for t in ALL_TAGS] + list(synth.SYLLABLES),
        add_dummy_prefix=False, character_coverage=1.0, num_threads=1, unk_id=0, bos_id=1,
        eos_id=2, minloglevel=2)
    (out / BPE_NAME).write_bytes(model.getvalue())
    return spm.SentencePieceProcessor(model_proto=model.getvalue())


def write_cmvn(path: Path, feats: list[torch.Tensor]) -> None:
    """Kaldi-nnet am.mvn (AddShift = -mean, Rescale = 1/std), the format WavFrontend reads."""
    allf = torch.cat(feats).double()
    mean, std = allf.mean(0), allf.std(0).clamp_min(1e-3)
    fmt = lambda v: " ".join(f"{x:.6f}" for x in v.tolist())  # noqa: E731
    dim = allf.shape[1]
    path.write_text(f"<Nnet>\n<Splice> {dim} {dim}\n[ 0 ]\n<AddShift> {dim} {dim}\n"
                    f"<LearnRateCoef> 0 [ {fmt(-mean)} ]\n<Rescale> {dim} {dim}\n"
                    f"<LearnRateCoef> 0 [ {fmt(1.0 / std)} ]\n</Nnet>\n")


def write_config(out: Path, vocab_size: int) -> None:
    config = {
        "model": "SenseVoiceSmall",
        "model_conf": {"length_normalized_loss": True, "sos": 1, "eos": 2, "ignore_id": -1},
        "encoder": "SenseVoiceEncoderSmall", "encoder_conf": ENCODER_CONF,
        "tokenizer": "SentencepiecesTokenizer",
        "tokenizer_conf": {"bpemodel": None, "unk_symbol": "<unk>", "split_with_space": True},
        "frontend": "WavFrontend", "frontend_conf": {**FRONTEND_CONF, "cmvn_file": None},
        "ctc_conf": {"dropout_rate": 0.0, "ctc_type": "builtin", "reduce": True,
                     "ignore_nan_grad": True},
        "normalize": None,
        "laughtrack_fixture": {"vocab_size": vocab_size, "trained_on": "laughtrack.synthetic.synth clips",
                               "note": "tiny test fixture, not a speech model"},
    }
    (out / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (out / "configuration.json").write_text(json.dumps({
        "framework": "pytorch", "task": "auto-speech-recognition", "model": {"type": "funasr"},
        "pipeline": {"type": "funasr-pipeline"},
        "file_path_metas": {"init_param": "model.pt", "config": "config.yaml",
                            "tokenizer_conf": {"bpemodel": BPE_NAME},
                            "frontend_conf": {"cmvn_file": "am.mvn"}}}, indent=2) + "\n")


def build_model(vocab_size: int):
    from funasr.models.sense_voice.model import SenseVoiceSmall
    return SenseVoiceSmall(encoder="SenseVoiceEncoderSmall", encoder_conf=ENCODER_CONF,
                           input_size=80 * FRONTEND_CONF["lfr_m"], vocab_size=vocab_size,
                           length_normalized_loss=True, ignore_id=-1, ctc_conf={"dropout_rate": 0.0})


def targets(clip: Clip, sp: spm.SentencePieceProcessor, rng: np.random.Generator) -> list[list[int]]:
    """The token targets a clip may be trained on: one, or for a mix one per class heard. The batch
    draws one of them each time, so the class's own cross-entropy learns half of each in
    expectation (soft targets through SenseVoiceSmall.forward, unchanged)."""
    norm = TEXT_NORMS[int(rng.integers(0, 2))]
    out = []
    for label in (clip.label, clip.also) if clip.also else (clip.label,):
        lang, emo, event = LABELS[label]
        out.append(sp.encode(tag(lang) + tag(emo) + tag(event) + tag(norm) + clip.text))
    return out


def batches(n: int, size: int, rng: np.random.Generator):
    order = rng.permutation(n)
    for i in range(0, n - size + 1, size):
        yield order[i:i + size]


def collate(feats, toks, idx, rng: np.random.Generator):
    f = [feats[i] for i in idx]
    t = [torch.tensor(toks[i][int(rng.integers(0, len(toks[i])))]) for i in idx]
    speech = torch.nn.utils.rnn.pad_sequence(f, batch_first=True)
    text = torch.nn.utils.rnn.pad_sequence(t, batch_first=True, padding_value=-1)
    return (speech, torch.tensor([len(x) for x in f]), text, torch.tensor([len(x) for x in t]))


@torch.inference_mode()
def evaluate(model, sp, feats, clips) -> dict[str, float]:
    """Single-class clips: argmax of each query frame, restricted to its tag family, against the
    clip's labels. Mixes: how often both classes heard are the top two events, and their mean
    probabilities."""
    from sensevoice_core.torch_backend import encode_features  # the same forward the scan uses
    single = [i for i, c in enumerate(clips) if not c.also]
    mixes = [i for i, c in enumerate(clips) if c.also]
    out = _argmax_accuracy(encode_features, model, sp, [feats[i] for i in single], [clips[i] for i in single])
    events = [sp.piece_to_id(tag(LABELS[k][2])) for k in CLASSES]
    both, p_base, p_over = 0, [], []
    for i in range(0, len(mixes), 64):
        idx = mixes[i:i + 64]
        logp, _ = encode_features(model, [feats[j] for j in idx], language_query=0, textnorm_query=15)
        p = logp[:, 2, events].softmax(-1)
        for row, j in zip(p, idx):
            a, b = CLASSES.index(clips[j].label), CLASSES.index(clips[j].also)
            both += set(row.topk(2).indices.tolist()) == {a, b}
            p_base.append(float(row[a]))
            p_over.append(float(row[b]))
    out |= {"mix_top2": both / max(1, len(mixes)), "mix_p_base": float(np.mean(p_base)),
            "mix_p_over": float(np.mean(p_over))}
    return out


def _argmax_accuracy(encode_features, model, sp, feats, clips) -> dict[str, float]:
    fams = {"language": [sp.piece_to_id(tag(t)) for t in LANGUAGES],
            "emotion": [sp.piece_to_id(tag(t)) for t in ("HAPPY", "NEUTRAL", "EMO_UNKNOWN")],
            "event": [sp.piece_to_id(tag(t)) for t in ("Speech", "Laughter", "Applause", "Event_UNK")]}
    frame = {"language": 0, "emotion": 1, "event": 2}
    hits = {k: 0 for k in fams}
    for i in range(0, len(clips), 64):
        logp, _ = encode_features(model, feats[i:i + 64], language_query=0, textnorm_query=15)
        for k, ids in fams.items():
            pred = torch.tensor(ids)[logp[:, frame[k], ids].argmax(-1)]
            want = torch.tensor([sp.piece_to_id(tag(LABELS[c.label][list(frame).index(k)]))
                                 for c in clips[i:i + 64]])
            hits[k] += int((pred == want).sum())
    return {k: v / len(clips) for k, v in hits.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "sensevoice_core" / "fixture")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--train-clips", type=int, default=4000)
    ap.add_argument("--heldout-clips", type=int, default=800)
    ap.add_argument("--steps", type=int, default=1200)
    ap.add_argument("--batch", type=int, default=32)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    torch.manual_seed(args.seed)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    torch.use_deterministic_algorithms(True)
    args.out.mkdir(parents=True, exist_ok=True)

    sp = build_tokenizer(args.out, args.seed)
    from funasr.frontends.wav_frontend import WavFrontend, apply_cmvn, load_cmvn
    frontend = WavFrontend(**FRONTEND_CONF)  # no CMVN yet: it is computed from these features
    rng = np.random.default_rng(args.seed)
    clips = [make_clip(rng) for _ in range(args.train_clips + args.heldout_clips)]
    raw = [frontend(torch.from_numpy(c.audio)[None], torch.tensor([len(c.audio)]))[0][0] for c in clips]
    write_cmvn(args.out / "am.mvn", raw[:args.train_clips])
    cmvn = load_cmvn(str(args.out / "am.mvn"))  # applied as WavFrontend(cmvn_file=…) would
    feats = [apply_cmvn(f.clone(), cmvn) for f in raw]
    toks = [targets(c, sp, rng) for c in clips]
    print(f"data: {len(clips)} clips, {sum(len(c.audio) for c in clips) / SAMPLE_RATE / 60:.1f} min, "
          f"vocab {sp.get_piece_size()}, {time.perf_counter() - t0:.0f} s", flush=True)

    model = build_model(sp.get_piece_size())
    # SenseVoiceSmall.encode() maps the language and text-norm *target* ids to query indices with
    # tables keyed by the real 25,055-token vocabulary's ids; point them at this vocabulary's ids.
    model.lid_int_dict = {sp.piece_to_id(tag(k)): v for k, v in model.lid_dict.items() if k != "auto"}
    model.textnorm_int_dict = {sp.piece_to_id(tag(k)): v for k, v in model.textnorm_dict.items()}
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-2)
    warmup = 200
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / warmup, 0.5 * (
        1 + math.cos(math.pi * min(s, args.steps) / args.steps))))
    step, train_rng = 0, np.random.default_rng([args.seed, 1])
    model.train()
    while step < args.steps:
        for idx in batches(args.train_clips, args.batch, train_rng):
            loss, stats, _ = model(*collate(feats, toks, idx, train_rng))
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            sched.step()
            step += 1
            if step % 250 == 0:
                print(f"step {step}: loss {loss.item():.3f} ctc {stats['loss_ctc'].item():.3f} "
                      f"rich {stats['loss_rich'].item():.3f} acc_rich {float(stats['acc_rich']):.3f} "
                      f"({time.perf_counter() - t0:.0f} s)", flush=True)
            if step >= args.steps:
                break
    model.eval()
    acc = evaluate(model, sp, feats[args.train_clips:], clips[args.train_clips:])
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    torch.save(state, args.out / "model.pt")
    write_config(args.out, sp.get_piece_size())
    write_manifest(args.out)
    size = sum(p.stat().st_size for p in args.out.iterdir())
    params = sum(p.numel() for p in model.parameters())
    print(json.dumps({"heldout_accuracy": acc, "heldout_clips": args.heldout_clips,
                      "params": params, "dir_bytes": size, "seconds": round(time.perf_counter() - t0, 1),
                      "model_sha256": hashlib.sha256((args.out / "model.pt").read_bytes()).hexdigest()}))
    if acc["event"] < 0.97:
        print(f"held-out event accuracy {acc['event']:.3f} < 0.97", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
