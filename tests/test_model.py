"""Loading: the fixture offline, manifest and weight checks, hub ids failing fast offline."""

import shutil
import socket
import threading

import pytest
import yaml

from sensevoice_core import FIXTURE_DIR, ModelIntegrityError, ModelUnavailableError, load_model
from sensevoice_core.model import MANIFEST_NAME, verify_manifest
from sensevoice_core.tags import EVENTS, LANGUAGES, tag


def test_fixture_is_small_and_complete():
    files = {p.name: p.stat().st_size for p in FIXTURE_DIR.iterdir()}
    for name in ("config.yaml", "model.pt", "am.mvn", "configuration.json", MANIFEST_NAME):
        assert name in files
    assert sum(files.values()) <= 5 * 1024 * 1024


def test_fixture_loads_and_infers_with_no_socket_opened(no_network, tmp_path):
    import numpy as np
    from sensevoice_core import scan
    model = load_model("fixture", device="cpu", cache_dir=tmp_path)
    result = scan(model, np.zeros(16_000, np.float32))
    assert len(result) == 1
    assert no_network == []  # nothing even tried to connect


def test_fixture_loads_through_funasr_automodel(no_network):
    from funasr import AutoModel
    auto = AutoModel(model=str(FIXTURE_DIR), disable_update=True, device="cpu", disable_pbar=True)
    assert type(auto.model).__name__ == "SenseVoiceSmall"
    assert type(auto.model.encoder).__name__ == "SenseVoiceEncoderSmall"
    assert type(auto.kwargs["frontend"]).__name__ == "WavFrontend"


def test_tag_ids_come_from_the_tokenizer(sv):
    sp = sv.tokenizer.sp
    for family in ("language", "event"):
        fam = sv.families[family]
        assert [sp.id_to_piece(i) for i in fam.ids] == [tag(n) for n in fam.names]
    assert set(sv.families["language"].names) == set(LANGUAGES)
    assert set(sv.families["event"].names) == set(EVENTS)


def test_threads_are_bounded_by_the_cores(cache_dir):
    import os
    import torch
    torch.set_num_threads(8)    # as funasr's AutoModel default (ncpu=4) or another library may leave it
    cores = len(os.sched_getaffinity(0))
    model = load_model("fixture", device="cpu", cache_dir=cache_dir)
    assert model.runner.session.get_session_options().intra_op_num_threads <= cores
    load_model("fixture", device="cpu", backend="torch", cache_dir=cache_dir)
    assert torch.get_num_threads() <= cores


@pytest.fixture
def fixture_copy(tmp_path):
    d = tmp_path / "model"
    shutil.copytree(FIXTURE_DIR, d)
    return d


def test_a_tampered_file_is_refused(fixture_copy):
    with open(fixture_copy / "am.mvn", "a") as f:
        f.write(" ")
    with pytest.raises(ModelIntegrityError, match="am.mvn.*manifest"):
        load_model(fixture_copy, device="cpu", cache_dir=fixture_copy.parent / "cache")


def test_weights_that_do_not_fit_the_config_are_refused(fixture_copy):
    (fixture_copy / MANIFEST_NAME).unlink()  # a dir without manifest is allowed, but checked
    config = yaml.safe_load((fixture_copy / "config.yaml").read_text())
    config["encoder_conf"]["linear_units"] *= 2
    (fixture_copy / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(ModelIntegrityError, match="does not fit"):
        load_model(fixture_copy, device="cpu", cache_dir=fixture_copy.parent / "cache")


def test_manifest_hash_identifies_the_model(fixture_copy):
    assert verify_manifest(fixture_copy) == verify_manifest(FIXTURE_DIR)


def test_incomplete_dir_names_what_is_missing(fixture_copy):
    (fixture_copy / "am.mvn").unlink()
    with pytest.raises(ModelUnavailableError, match="lacks am.mvn"):
        load_model(fixture_copy, device="cpu", cache_dir=fixture_copy.parent / "cache")


@pytest.mark.parametrize("hub_id", ["iic/SenseVoiceSmall", "FunAudioLLM/SenseVoiceSmall"])
def test_hub_id_offline_fails_fast_with_the_fix(hub_id, no_network, monkeypatch, tmp_path):
    """One probe of the hub, then the fix: never funasr's download with its ~20 s of retries."""
    monkeypatch.setenv("HOME", str(tmp_path))  # empty caches
    with pytest.raises(ModelUnavailableError) as info:
        load_model(hub_id, device="cpu", cache_dir=tmp_path / "cache")
    message = str(info.value)
    assert hub_id in message and "--model DIR" in message and "unreachable" in message
    assert len(no_network) == 1, no_network


@pytest.mark.timeout(30)
def test_hub_probe_that_hangs_still_fails(monkeypatch, tmp_path):
    """A hub that never answers: the probe gives up on its own (HUB_PROBE_TIMEOUT_S); without
    that, this test would hang until its timeout fails it."""
    monkeypatch.setenv("HOME", str(tmp_path))
    never = threading.Event()

    def hang(*args, **kwargs):
        never.wait(120)
        raise OSError(110, "Connection timed out")
    monkeypatch.setattr(socket, "create_connection", hang)
    try:
        with pytest.raises(ModelUnavailableError, match="unreachable \\(timed out\\)"):
            load_model("iic/SenseVoiceSmall", device="cpu", cache_dir=tmp_path / "cache")
    finally:
        never.set()


def test_a_cached_hub_copy_loads_offline(no_network, monkeypatch, tmp_path):
    cached = tmp_path / ".cache" / "modelscope" / "hub" / "models" / "iic" / "SenseVoiceSmall"
    shutil.copytree(FIXTURE_DIR, cached)
    monkeypatch.setenv("HOME", str(tmp_path))
    model = load_model("iic/SenseVoiceSmall", device="cpu", cache_dir=tmp_path / "cache")
    assert model.model_dir == cached.resolve() and no_network == []


def test_cuda_without_cuda_is_a_clear_error(tmp_path):
    import torch
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.raises(ModelUnavailableError, match="no CUDA"):
        load_model("fixture", device="cuda", cache_dir=tmp_path)
