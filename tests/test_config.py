"""One configuration read at the edge, and one identity of an analysis."""

import json
import shutil
from dataclasses import replace

import pytest
import torch
from typer.testing import CliRunner

from laughtrack.params import AnalysisParams
from laughtrack.config import ENV, RunConfig
from laughtrack.identity import ConfigKey
from laughtrack.events import EventOptions
from laughtrack_cli.main import app
from sensevoice_core import FIXTURE_DIR, ModelIntegrityError
from sensevoice_core import identity as model_mod

VALUES = {"db": "x.duckdb", "model": "fixture", "cache_dir": "/c", "inbox": "in", "device": "cpu",
          "report_dir": "r", "backend": "torch", "lake_data": "/lake", "host": "gpu7",
          "query_timeout_s": "12.5", "query_memory": "256MB", "query_threads": "1", "precision": "bf16",
          "torch_compile": "on"}
FLAGS = {"device": "cuda", "backend": "onnx-int8", "query_timeout_s": 3, "query_memory": "2GB", "query_threads": 4,
         "precision": "fp32", "torch_compile": False}


@pytest.mark.parametrize("field", sorted(set(ENV) - {"events"}))
def test_a_flag_beats_the_environment_which_beats_the_default(field):
    typed = type(getattr(RunConfig(), field))
    default = getattr(RunConfig(), field)
    assert getattr(RunConfig.from_env({}), field) == default
    assert getattr(RunConfig.from_env({ENV[field]: VALUES[field]}), field) == typed(VALUES[field])
    flag = FLAGS.get(field, "flag")
    assert getattr(RunConfig.from_env({ENV[field]: VALUES[field]}, **{field: flag}), field) == flag


@pytest.mark.parametrize("env, message", [({"LAUGHTRACK_QUERY_TIMEOUT_S": "soon"}, "not a number"),
                                          ({"LAUGHTRACK_QUERY_MEMORY": "lots"}, "512MB"),
                                          ({"LAUGHTRACK_QUERY_THREADS": "0"}, "1 or more")])
def test_query_limits_no_reader_could_use_are_refused(env, message):
    with pytest.raises(ValueError, match=message):
        RunConfig.from_env(env)


def test_a_named_event_set_comes_from_the_store_flag_before_environment(tmp_path):
    from laughtrack.events import LabelRule
    from laughtrack.store import open_store
    db = str(tmp_path / "r.duckdb")
    store = open_store(db)
    store.migrate()
    for name, on in (("loud", 0.7), ("quiet", 0.3), ("quiet", 0.25)):     # the newest of a name wins
        rules = EventOptions().with_rules([LabelRule("Laughter", on, on, 0.0, 1.0)], name)
        store.save_event_set(name, json.dumps(rules.to_dict()), "labels.csv", 0.5, 0.9)
    resolve = lambda config: config.resolved(store)      # noqa: E731 — what a flow's entry step does
    assert resolve(RunConfig.from_env({"LAUGHTRACK_DB": db})).params.events == EventOptions()
    from_env = resolve(RunConfig.from_env({"LAUGHTRACK_DB": db, "LAUGHTRACK_EVENTS": "quiet"}))
    assert from_env.params.events.name == "quiet" and from_env.params.events.rule("Laughter").on == 0.25
    flag = resolve(RunConfig.from_env({"LAUGHTRACK_DB": db, "LAUGHTRACK_EVENTS": "quiet"}, events="loud"))
    assert flag.params.events.rule("Laughter").on == 0.7
    assert flag.params.events.rule("Applause") == EventOptions().rule("Applause")      # the rest as default
    with pytest.raises(ValueError, match="no event parameter set 'nope'.*laughtrack tune"):
        resolve(RunConfig.from_env({"LAUGHTRACK_DB": db}, events="nope"))
    # commands that do not analyse never read it: a query works with any LAUGHTRACK_EVENTS
    assert RunConfig.from_env({"LAUGHTRACK_DB": db, "LAUGHTRACK_EVENTS": "nope"}).events == "nope"


@pytest.mark.parametrize("given, message", [({"device": "gpu"}, "device 'gpu'"), ({"backend": "tensorrt"}, "backend"),
                                            ({"stream": "two"}, "stream"), ({"device": "cuda:x"}, "cuda:N")])
def test_an_unusable_setting_is_refused_before_any_work(given, message):
    with pytest.raises(ValueError, match=message):
        RunConfig.from_env({}, **given)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_laughtrack_device_from_the_environment_is_honoured(tmp_path):
    """LAUGHTRACK_DEVICE=cuda on a CPU machine: the CUDA message, one line, before Prefect starts."""
    clip = tmp_path / "x.wav"
    clip.write_bytes(b"RIFF")
    runner = CliRunner()
    env = {"LAUGHTRACK_DEVICE": "cuda", "LAUGHTRACK_MODEL": "fixture", "LAUGHTRACK_CACHE": str(tmp_path / "c")}
    result = runner.invoke(app, ["analyze", str(clip), "--db", str(tmp_path / "r.duckdb")], env=env)
    assert result.exit_code == 1, result.output
    assert "no CUDA" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "r.duckdb").exists()
    assert "no CUDA" in runner.invoke(app, ["analyze", str(clip), "--device", "cuda"], env={}).output
    flag_wins = runner.invoke(app, ["analyze", str(clip), "--device", "cpu", "--model", str(tmp_path / "none")],
                              env=env)
    assert "no CUDA" not in flag_wins.output and "neither a model dir" in flag_wins.output


def key(**changes) -> ConfigKey:
    base = ConfigKey("m" * 64, AnalysisParams().to_json(), "0.1.0+abc", "onnx-int8 fp32 batch 64")
    return replace(base, **changes)


@pytest.mark.parametrize("change", [
    {"model_sha256": "n" * 64}, {"params_json": AnalysisParams(window_s=1.0, hop_s=0.5).to_json()},
    {"params_json": AnalysisParams(events=EventOptions(on=0.6, off=0.6)).to_json()},
    {"code_version": "0.1.0+def"}, {"numbers": "torch fp32"}, {"numbers": "onnx-int8 fp32 batch 32"},
    {"numbers": "torch bf16"}])
def test_everything_that_changes_the_numbers_changes_the_identity(change):
    assert key().id != key(**change).id
    assert key().analysis("a" * 64, 0).analysis_id != key(**change).analysis("a" * 64, 0).analysis_id
    assert key().analysis("a" * 64, 0).analysis_id == key().analysis("a" * 64, 0).analysis_id
    assert key().analysis("a" * 64, 0).analysis_id != key().analysis("a" * 64, 1).analysis_id


def test_the_engine_names_backend_precision_and_int8_batch(tmp_path):
    engine = RunConfig(model="fixture", device="cpu", cache_dir=str(tmp_path)).engine()
    assert engine.backend == "onnx-int8" and engine.label == "cpu onnx-int8 fp32 batch 64"
    torch_engine = RunConfig(model="fixture", device="cpu", backend="torch", cache_dir=str(tmp_path)).engine()
    assert torch_engine.config_key(AnalysisParams()).numbers == "torch fp32"
    assert engine.config_key(AnalysisParams()).id != torch_engine.config_key(AnalysisParams()).id


def test_the_model_is_hashed_once_then_known_by_its_file_stats(tmp_path, monkeypatch):
    model = tmp_path / "model"
    shutil.copytree(FIXTURE_DIR, model)
    hashed = []
    real = model_mod._sha256
    monkeypatch.setattr(model_mod, "_sha256", lambda p: hashed.append(p.name) or real(p))
    monkeypatch.setattr(model_mod, "_verified", {})
    first = model_mod.model_identity(model, cache_dir=tmp_path / "cache")[1]
    assert "model.pt" in hashed
    hashed.clear()
    model_mod._verified.clear()          # a new process: only the disk cache is left
    assert model_mod.model_identity(model, cache_dir=tmp_path / "cache")[1] == first
    assert hashed == []
    with open(model / "am.mvn", "a") as f:  # a changed file is verified again, and refused
        f.write(" ")
    with pytest.raises(ModelIntegrityError, match="am.mvn"):
        model_mod.model_identity(model, cache_dir=tmp_path / "cache")


def test_the_int8_export_lives_under_the_configured_cache(tmp_path):
    from sensevoice_core import load_model
    sv = load_model("fixture", device="cpu", cache_dir=tmp_path)
    assert sv.backend == "onnx-int8" and sv.runner.path.is_relative_to(tmp_path / "onnx")
