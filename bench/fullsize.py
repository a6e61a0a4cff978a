"""A full-size SenseVoiceSmall model dir with RANDOM weights, for speed measurements only.

Same architecture as the released iic/SenseVoiceSmall (SenseVoiceEncoderSmall, 512-d, 50 + 20
SAN-M blocks, 25,055-token CTC head, ~234 M parameters). The weights are random (seeded): the
outputs mean nothing, but the arithmetic per second of audio is exactly the real model's, so
throughput measured on it is the real model's throughput.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import sentencepiece as spm
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

from sensevoice_core.model import FIXTURE_DIR, write_manifest  # noqa: E402
from sensevoice_core.tags import ALL_TAGS, tag  # noqa: E402

VOCAB_SIZE = 25_055
ENCODER_CONF = {"output_size": 512, "attention_heads": 4, "linear_units": 2048, "num_blocks": 50,
                "tp_blocks": 20, "dropout_rate": 0.1, "positional_dropout_rate": 0.1,
                "attention_dropout_rate": 0.1, "input_layer": "pe",
                "pos_enc_class": "SinusoidalPositionEncoder", "normalize_before": True,
                "kernel_size": 11, "sanm_shfit": 0, "selfattention_layer_type": "sanm"}


def padded_tokenizer(path: Path) -> None:
    """A sentencepiece model with every SenseVoice tag, padded to the real vocabulary size."""
    tags = [tag(t) for t in ALL_TAGS]
    pads = [f"<|pad{i}|>" for i in range(VOCAB_SIZE - 3 - len(tags) - 40)]
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(["random weights speed test only"] * 50), model_writer=model,
        model_type="char", vocab_size=VOCAB_SIZE, hard_vocab_limit=False, user_defined_symbols=tags + pads,
        add_dummy_prefix=False, num_threads=1, minloglevel=2)
    path.write_bytes(model.getvalue())


def build(out: Path, seed: int = 0) -> Path:
    """Write the random full-size model dir to `out` (about 940 MB) and return it."""
    from funasr.models.sense_voice.model import SenseVoiceSmall
    out.mkdir(parents=True, exist_ok=True)
    bpe = out / "random.bpe.model"
    padded_tokenizer(bpe)
    vocab = spm.SentencePieceProcessor(model_file=str(bpe)).get_piece_size()
    torch.manual_seed(seed)
    model = SenseVoiceSmall(encoder="SenseVoiceEncoderSmall", encoder_conf=ENCODER_CONF, input_size=560,
                            vocab_size=vocab, length_normalized_loss=True, ignore_id=-1)
    torch.save(model.state_dict(), out / "model.pt")
    config = yaml.safe_load((FIXTURE_DIR / "config.yaml").read_text())
    config["encoder_conf"] = ENCODER_CONF
    config["laughtrack_fixture"] = {"note": "RANDOM WEIGHTS: speed measurements only", "vocab_size": vocab}
    (out / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (out / "am.mvn").write_bytes((FIXTURE_DIR / "am.mvn").read_bytes())
    meta = json.loads((FIXTURE_DIR / "configuration.json").read_text())
    meta["file_path_metas"]["tokenizer_conf"]["bpemodel"] = bpe.name
    (out / "configuration.json").write_text(json.dumps(meta, indent=2))
    write_manifest(out)
    return out


def parameter_count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
