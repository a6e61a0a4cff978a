"""The fixture trainer is deterministic and writes a dir funasr loads."""

import hashlib

import pytest

from sensevoice_core import load_model


@pytest.mark.slow
def test_training_twice_gives_identical_weights(tmp_path):
    from train_fixture import main
    digests = []
    for run in ("a", "b"):
        out = tmp_path / run
        main(["--out", str(out), "--steps", "3", "--train-clips", "64", "--heldout-clips", "16", "--batch", "16"])
        digests.append(hashlib.sha256((out / "model.pt").read_bytes()).hexdigest())
    assert digests[0] == digests[1]
    model = load_model(tmp_path / "a", device="cpu", backend="torch", cache_dir=tmp_path / "cache")  # manifest verifies
    assert model.vocab_size == int(model.module.vocab_size) == int(model.module.ctc.ctc_lo.out_features)
