"""The lean model load: funasr's features and tokenizer without funasr, the cached export without torch."""

import json
import subprocess
import sys

import numpy as np
import pytest

from sensevoice_core import FIXTURE_DIR, load_model
from sensevoice_core.frontend import Frontend, Tokenizer, load_cmvn, tokenizer_file

ROOT = FIXTURE_DIR.parents[1]


@pytest.fixture(scope="module")
def funasr_parts():
    from funasr import AutoModel
    auto = AutoModel(model=str(FIXTURE_DIR), disable_update=True, device="cpu", disable_pbar=True, disable_log=True)
    auto.kwargs["frontend"].dither = 0.0
    return auto.kwargs["frontend"], auto.kwargs["tokenizer"]


@pytest.mark.parametrize("n", [400, 401, 561, 9600, 16_000, 3 * 16_000 + 7])
def test_features_equal_funasr_wavfrontend_bit_for_bit(funasr_parts, n):
    import torch
    wav_frontend, _ = funasr_parts
    import yaml
    ours = Frontend.from_model_dir(FIXTURE_DIR, yaml.safe_load((FIXTURE_DIR / "config.yaml").read_text()))
    audio = (np.random.default_rng(n).standard_normal(n) * 0.2).astype(np.float32)
    ref, _ = wav_frontend(torch.from_numpy(audio)[None], torch.tensor([n]))
    got = ours(audio)
    assert got.dtype == np.float32 and got.shape == tuple(ref[0].shape)
    assert np.array_equal(got, ref[0].numpy())


def test_tokenizer_decodes_as_funasr(funasr_parts):
    _, theirs = funasr_parts
    ours = Tokenizer(tokenizer_file(FIXTURE_DIR, {"tokenizer_conf": {"bpemodel": None}}))
    ids = list(range(ours.get_vocab_size()))
    assert ours.get_vocab_size() == theirs.get_vocab_size()
    assert ours.decode(ids) == theirs.decode(ids)


def test_a_bad_cmvn_file_names_itself(tmp_path):
    bad = tmp_path / "am.mvn"
    bad.write_text("<Nnet>\n</Nnet>\n")
    with pytest.raises(ValueError, match="am.mvn"):
        load_cmvn(bad)


LEAN = """
import json, sys, time, resource
import numpy as np
from sensevoice_core import load_model, scan
m = load_model("fixture", device="cpu", cache_dir=sys.argv[1])
r = scan(m, np.zeros(16000, np.float32))
print(json.dumps({"torch": "torch" in sys.modules, "funasr": "funasr" in sys.modules, "backend": m.backend,
                  "windows": len(r), "event": r.tags("event")[0]}))
"""


@pytest.mark.timeout(300)
def test_with_the_export_cached_a_load_imports_neither_funasr_nor_torch(tmp_path):
    def run() -> dict:
        out = subprocess.run([sys.executable, "-c", LEAN, str(tmp_path)], cwd=ROOT, capture_output=True,
                             text=True, timeout=240)
        assert out.returncode == 0, out.stderr[-2000:]
        return json.loads(out.stdout.strip().splitlines()[-1])

    first, second = run(), run()
    assert first["torch"] and first["funasr"]          # the first load exports through funasr + torch
    assert not second["torch"] and not second["funasr"]
    assert first == {**second, "torch": True, "funasr": True}   # the same answer (same export, same features)


def test_a_second_load_reads_the_cached_export_and_builds_no_module(sv, cache_dir):
    again = load_model("fixture", device="cpu", cache_dir=cache_dir)
    assert again.module is None and again.funasr_kwargs == {} and again.runner.path == sv.runner.path


def test_a_frontend_funasr_would_compute_differently_is_refused(tmp_path):
    import shutil

    import yaml

    from sensevoice_core import ModelUnavailableError
    d = tmp_path / "model"
    shutil.copytree(FIXTURE_DIR, d)
    (d / "manifest.sha256").unlink()
    config = yaml.safe_load((d / "config.yaml").read_text())
    config["frontend_conf"]["snip_edges"] = False
    (d / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(ModelUnavailableError, match="snip_edges"):
        load_model(d, device="cpu", cache_dir=tmp_path / "cache")
