"""Config loading: YAML -> dataclasses, --opts overrides, typo detection, round trip, CLI errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from simplepose.config import (
    Config,
    ConfigError,
    config_from_dict,
    config_to_dict,
    load_config,
    save_config,
)

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted((REPO / "configs").glob("*.yaml"))


def _write(tmp_path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_yaml_load_types(tmp_path):
    path = _write(tmp_path, """
seed: 3
model: {name: imhn, kwargs: {num_stacks: 1, inp_dim: 32}}
data: {task: bottomup, input_size: 128, batch_size: 2}
optim: {lr: 2.5e-5, weight_decay: 5e-4, milestones: [6, 12]}
train: {amp: off, skip_loss_above: null}
""")
    cfg = load_config(path)
    assert isinstance(cfg, Config)
    assert cfg.seed == 3
    assert cfg.model.kwargs == {"num_stacks": 1, "inp_dim": 32}
    # YAML 1.1 reads 2.5e-5 / 5e-4 (no dot) as strings; float fields accept them
    assert cfg.optim.lr == pytest.approx(2.5e-5) and isinstance(cfg.optim.lr, float)
    assert cfg.optim.weight_decay == pytest.approx(5e-4)
    assert cfg.optim.milestones == [6, 12]
    assert cfg.train.amp == "off"  # YAML `off` is a boolean
    assert cfg.train.skip_loss_above is None
    assert cfg.data.workers == 2  # default kept


def test_opts_override(tmp_path):
    path = _write(tmp_path, "optim: {lr: 0.1}\n")
    cfg = load_config(path, [
        "optim.lr=1e-3", "data.batch_size=8", "model.kwargs.num_stacks=2", "train.sync_bn=true",
        "optim.betas=[0.8, 0.9]", "output_dir=/tmp/x", "loss.batch_normalizer=null",
    ])
    assert cfg.optim.lr == pytest.approx(1e-3)
    assert cfg.data.batch_size == 8
    assert cfg.model.kwargs["num_stacks"] == 2
    assert cfg.train.sync_bn is True
    assert cfg.optim.betas == [0.8, 0.9]
    assert cfg.train.output_dir == "/tmp/x"  # unique leaf name
    assert cfg.loss.batch_normalizer is None


@pytest.mark.parametrize("text, key, valid", [
    ("optim: {lrr: 0.1}\n", "optim.lrr", "lr"),
    ("trian: {amp: off}\n", "trian", "train"),
    ("data: {batchsize: 2}\n", "data.batchsize", "batch_size"),
    ("model: {name: imhn, kwargs: {}, kwarg: {}}\n", "model.kwarg", "kwargs"),
])
def test_unknown_yaml_key_is_named(tmp_path, text, key, valid):
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp_path, text))
    msg = str(err.value)
    assert f"unknown config key {key!r}" in msg
    assert valid in msg.split("valid keys")[1]  # the valid keys are listed


def test_unknown_override_key_is_named():
    with pytest.raises(ConfigError, match=r"'train\.outptu_dir'.*output_dir"):
        load_config(None, ["train.outptu_dir=x"])
    with pytest.raises(ConfigError, match="'nosuchkey'"):
        load_config(None, ["nosuchkey=1"])
    with pytest.raises(ConfigError, match="ambiguous config key 'seed'|'seed'"):
        load_config(None, ["seed.x=1"])
    with pytest.raises(ConfigError, match="not of the form"):
        load_config(None, ["optim.lr"])


def test_bad_values():
    with pytest.raises(ConfigError, match="train.amp"):
        load_config(None, ["train.amp=fp8"])
    with pytest.raises(ConfigError, match="data.batch_size"):
        load_config(None, ["data.batch_size=two"])
    with pytest.raises(ConfigError, match="data.batch_size"):
        load_config(None, ["data.batch_size=0"])
    with pytest.raises(ConfigError, match="optim.lr"):
        load_config(None, ["optim.lr=fast"])


@pytest.mark.parametrize("opts, needle", [
    (["model.name=imhnn"], "model.name: unknown model 'imhnn'; known: cpn101"),
    (["model.name=rsn18"], "data.task is 'bottomup' but model rsn18 is topdown"),
    (["model.name=rsn18", "data.task=topdown", "model.kwargs.input_size=[128, 96]"],
     r"input_size \[128, 96\] and input size \[256, 192\] disagree"),
    (["model.name=rsn18", "data.task=topdown", "data.codec=cpn_256x192"],
     "codec cpn_256x192 is a cpn codec; model rsn18 uses rsn codecs"),
    (["model.name=mspn", "data.task=topdown", "data.codec=mspn_384x288"],
     r"codec mspn_384x288 is for input \[384, 288\], the model's input is \[256, 192\]"),
    (["model.name=imhn", "data.codec=rsn_256x192"], "bottom-up: a top-down codec"),
    (["data.input_size=500"], "data.input_size 500 must be a multiple of 64 for imhn"),
])
def test_model_input_size_and_codec_must_agree(opts, needle):
    with pytest.raises(ConfigError, match=needle):
        load_config(None, opts)


def test_consistent_topdown_config_loads():
    cfg = load_config(None, ["model.name=rsn18", "data.task=topdown", "data.codec=rsn_384x288",
                             "data.input_hw=[384, 288]", "model.kwargs.input_size=[384, 288]"])
    from simplepose.engine.builders import build_spec

    spec = build_spec(cfg)
    assert spec.input_hw == (384, 288) and spec.codec["name"] == "rsn_384x288"
    assert spec.build_codec().kernels == (23, 17, 13, 9, 7)


def test_round_trip(tmp_path):
    cfg = load_config(None, ["optim.lr=3e-4", "model.kwargs.num_stacks=1",
                             "data.input_hw=[384, 288]"])
    path = save_config(cfg, tmp_path / "saved.yaml")
    again = load_config(path)
    assert again == cfg
    assert config_from_dict(config_to_dict(cfg)) == cfg


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_shipped_configs_load(path):
    cfg = load_config(path)
    from simplepose.spec import get_spec

    assert get_spec(cfg.model.name).paradigm == cfg.data.task
    if cfg.data.task == "topdown":
        assert cfg.optim.name == "adam" and cfg.optim.schedule == "warmup_linear"


def test_full_recipe_matches_spec():
    cfg = load_config(REPO / "configs" / "imhn_512_coco.yaml")
    assert cfg.model.kwargs["num_stacks"] == 4 and cfg.data.input_size == 512
    assert cfg.data.batch_size == 4 and cfg.optim.lr == pytest.approx(2.5e-5)
    assert cfg.optim.lr_scales_with_world_size and cfg.optim.weight_decay == pytest.approx(5e-4)
    assert cfg.optim.momentum == pytest.approx(0.9) and cfg.loss.gamma == 2.0
    assert cfg.train.skip_loss_above == pytest.approx(2e5)


@pytest.fixture
def _cli(run_cli, monkeypatch):
    """train_dist.py's ``main(argv)`` in process, from the repository root."""
    monkeypatch.chdir(REPO)
    return lambda *args: run_cli("train", *args)


def test_cli_typo_exits_2_naming_the_key(_cli):
    res = _cli("--config", "configs/imhn_tiny.yaml", "--opts", "train.outptu_dir=/tmp/x")
    assert res.returncode == 2
    lines = [ln for ln in res.stderr.strip().splitlines() if ln]
    assert len(lines) == 1 and "train.outptu_dir" in lines[0], res.stderr


def test_cli_missing_data_one_line(tmp_path, _cli):
    res = _cli("--config", "configs/imhn_tiny.yaml", "--opts", f"output_dir={tmp_path}",
               f"data.train_ann={tmp_path / 'nope.json'}", "--log-level", "ERROR")
    assert res.returncode == 2
    lines = [ln for ln in res.stderr.strip().splitlines() if ln]
    assert len(lines) == 1 and "data.train_ann" in lines[0] and "nope.json" in lines[0], res.stderr
