"""Checkpoint format (safetensors + rebuild metadata), weights_only loading, converter script."""

import importlib.util
import json
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from simplepose.checkpoint import load_model, load_state_dict_any, read_metadata, save_model
from simplepose.convert.simplepose_imhn import reference_key_to_ours
from simplepose.errors import CheckpointError, InputError
from simplepose.models.imhn import build_imhn
from simplepose.spec import PoseModelSpec, get_spec

REPO = Path(__file__).resolve().parents[1]
TINY = dict(num_stacks=2, inp_dim=32, increase=16, stem_channels=8, se_reduction=4, num_scales=3)
SPEC = get_spec("imhn").with_kwargs(**TINY)


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    model = build_imhn(**TINY).eval()
    with torch.no_grad():  # non-trivial BN statistics so that a round trip really checks them
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return model


def _outputs(model, seed=0):
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return [t for stack in model(x) for t in stack]


def test_round_trip(tmp_path, tiny):
    path = save_model(
        tmp_path / "tiny.safetensors",
        SPEC,
        tiny.state_dict(),
        extra_meta={"epoch": 3, "note": "tiny"},
    )
    assert path.is_file() and not list(tmp_path.glob(".*tmp"))  # atomic: no temp file left
    model, meta = load_model(path, expected_model="imhn")
    assert meta["simplepose_model"] == "imhn" and meta["format_version"] == "1"
    assert meta["model_kwargs"] == TINY and meta["epoch"] == "3" and meta["note"] == "tiny"
    assert not model.training
    for key, value in tiny.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    assert all(p.requires_grad for p in model.parameters())
    for a, b in zip(_outputs(model), _outputs(tiny)):
        assert torch.equal(a, b)
    assert read_metadata(path)["model_kwargs"] == TINY
    assert meta["spec"] == SPEC and meta["spec"].to_dict() == SPEC.to_dict()


def _legacy_checkpoint(path, name, kwargs, state_dict):
    """A checkpoint as written before checkpoints carried the spec (format 1 metadata with
    ``simplepose_model`` and ``model_kwargs`` only)."""
    tensors = {k: v.detach().contiguous() for k, v in state_dict.items()}
    save_file(tensors, str(path), metadata={
        "simplepose_model": name, "model_kwargs": json.dumps(kwargs), "format_version": "1"})
    return path


def test_checkpoint_from_before_specs_loads(tmp_path, tiny):
    path = _legacy_checkpoint(tmp_path / "old_imhn.safetensors", "imhn", TINY, tiny.state_dict())
    model, meta = load_model(path)
    assert meta["spec"] == SPEC
    for a, b in zip(_outputs(model), _outputs(tiny)):
        assert torch.equal(a, b)
    # a top-down one: the codec follows the old model_kwargs input size, as pipelines did then
    kwargs = {"num_stages": 1, "input_size": [128, 96]}
    rsn = get_spec("rsn18").build_model(**kwargs)
    path = _legacy_checkpoint(tmp_path / "old_rsn.safetensors", "rsn18", kwargs, rsn.state_dict())
    spec = read_metadata(path)["spec"]
    assert spec.name == "rsn18" and spec.paradigm == "topdown" and spec.input_hw == (128, 96)
    assert spec.build_codec().name == "rsn_128x96" and spec.kwargs == kwargs
    from simplepose import Predictor

    predictor = Predictor.from_checkpoint(path, device="cpu", detector=None, flip=False)
    assert predictor.mode == "topdown" and predictor.pipeline.codec.input_hw == (128, 96)
    # an old checkpoint of a name nobody registers any more: a clear error
    path = _legacy_checkpoint(tmp_path / "gone.safetensors", "gone_net", {}, tiny.state_dict())
    with pytest.raises(CheckpointError, match="unknown model 'gone_net'"):
        load_model(path)


def test_spec_metadata_rebuilds_without_the_registry(tmp_path, tiny):
    """The whole spec is in the file: a model registered nowhere loads from it alone."""
    spec = SPEC.replace(name="my_imhn_variant")
    path = save_model(tmp_path / "variant.safetensors", spec, tiny.state_dict())
    model, meta = load_model(path)
    assert meta["spec"] == spec and meta["simplepose_model"] == "my_imhn_variant"
    with pytest.raises(InputError, match="unknown model"):
        get_spec("my_imhn_variant")
    for a, b in zip(_outputs(model), _outputs(tiny)):
        assert torch.equal(a, b)
    assert PoseModelSpec.from_json(spec.to_json()) == spec


def test_wrong_model_name_refused(tmp_path, tiny):
    path = save_model(tmp_path / "tiny.safetensors", SPEC, tiny.state_dict())
    with pytest.raises(CheckpointError, match="holds a 'imhn' model, expected 'cpn50'"):
        load_model(path, expected_model="cpn50")


def test_missing_corrupt_and_foreign_files_refused(tmp_path, tiny):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_model(tmp_path / "nope.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00\x01not a safetensors file" * 10)
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        load_model(junk)
    good = save_model(tmp_path / "good.safetensors", SPEC, tiny.state_dict())
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(good.read_bytes()[:-1000])
    with pytest.raises(CheckpointError):
        load_model(truncated)
    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, str(plain))  # valid safetensors, no simplepose metadata
    with pytest.raises(CheckpointError, match="not a simplepose checkpoint"):
        load_model(plain)


def test_mismatching_keys_and_shapes_listed(tmp_path, tiny):
    sd = dict(tiny.state_dict())
    del sd["heads.1.2.bias"]
    sd["extra.weight"] = torch.zeros(1)
    path = save_model(tmp_path / "bad.safetensors", SPEC, sd, verify=False)
    with pytest.raises(
        CheckpointError, match=r"1 missing: heads\.1\.2\.bias; 1 unexpected: extra\.weight"
    ):
        load_model(path)
    # kwargs in the metadata that do not fit the tensors: shape mismatches are listed
    path = save_model(
        tmp_path / "wide.safetensors",
        SPEC.with_kwargs(out_dim=17),
        tiny.state_dict(),
        verify=False,
    )
    with pytest.raises(
        CheckpointError,
        match=r"shape mismatch: .*heads\.0\.0\.weight \(50, 32, 1, 1\) != "
        r"\(17, 32, 1, 1\)",
    ):
        load_model(path)
    with pytest.raises(
        CheckpointError, match="shape mismatch"
    ):  # verify=True catches it at save time
        save_model(
            tmp_path / "never.safetensors", SPEC.with_kwargs(out_dim=17), tiny.state_dict()
        )
    assert not (tmp_path / "never.safetensors").exists()
    with pytest.raises(CheckpointError, match="reserved"):
        save_model(
            tmp_path / "x.safetensors",
            SPEC,
            tiny.state_dict(),
            extra_meta={"model_kwargs": 1},
        )
    with pytest.raises(CheckpointError, match="PoseModelSpec"):
        save_model(tmp_path / "x.safetensors", "imhn", tiny.state_dict())
    with pytest.raises(InputError, match="unknown model 'no_such_model'; known: cpn101, cpn50"):
        get_spec("no_such_model")


def test_shared_and_view_tensors_are_saved(tmp_path):
    """safetensors refuses shared storage; save_model copies such tensors instead of failing."""
    sd = dict(build_imhn(**TINY).state_dict())
    shared = torch.full((8,), 0.25)
    big = torch.arange(16.0)
    sd["stem.conv1.bn.bias"] = shared
    sd["stem.conv1.bn.running_mean"] = shared  # same storage twice
    sd["stem.conv1.bn.weight"] = big[4:12]  # a view into a larger storage
    model, _ = load_model(save_model(tmp_path / "s.safetensors", SPEC, sd))
    assert torch.equal(model.stem.conv1.bn.bias.detach(), shared)
    assert torch.equal(model.stem.conv1.bn.running_mean, shared)
    assert torch.equal(model.stem.conv1.bn.weight.detach(), big[4:12])


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))  # would create a file when unpickled


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_load_state_dict_any_refuses_pickled_code(tmp_path):
    marker = tmp_path / "pwned"
    evil_pth = tmp_path / "evil.pth"
    torch.save({"weights": {"a": torch.zeros(2)}, "payload": _Evil(str(marker))}, evil_pth)
    with pytest.raises(CheckpointError, match="refusing to unpickle"):
        load_state_dict_any(evil_pth)
    raw_pkl = tmp_path / "evil.pkl"
    raw_pkl.write_bytes(pickle.dumps({"w": _Evil(str(marker))}))
    with pytest.raises(CheckpointError):
        load_state_dict_any(raw_pkl)
    assert not marker.exists()
    with pytest.raises(CheckpointError, match="does not exist"):
        load_state_dict_any(tmp_path / "missing.pth")


def test_load_state_dict_any_reads_tensors(tmp_path):
    sd = {"a": torch.arange(3.0), "b": torch.ones(2, 2)}
    torch.save({"weights": sd, "epoch": 7}, tmp_path / "ok.pth")
    got = load_state_dict_any(tmp_path / "ok.pth")
    assert got["epoch"] == 7 and torch.equal(got["weights"]["b"], sd["b"])
    save_file(sd, str(tmp_path / "ok.safetensors"))
    assert torch.equal(load_state_dict_any(tmp_path / "ok.safetensors")["a"], sd["a"])


def _reference_layout(model):
    """The tiny model's weights under official SimplePose names (inverse of the renaming)."""
    ours = model.state_dict()
    ref = {}
    for key in _reference_keys(model):
        ref["module.posenet." + key] = ours[reference_key_to_ours(key)].clone()
    assert len(ref) == len(ours)
    return {"weights": ref, "epoch": 1}


def _reference_keys(model):
    """Reference key names for an IMHN config, generated from the layout description."""
    res = (
        ["convBlock.0.weight"]
        + [f"convBlock.{i}.{p}" for i in (1, 4, 7) for p in _BN]
        + ["convBlock.3.weight", "convBlock.6.weight"]
    )
    skip = ["skipConv.0.weight"] + [f"skipConv.1.{p}" for p in _BN]
    cbn = ["conv.weight"] + [f"bn.{p}" for p in _BN]
    keys = ["pre.conv1.weight"] + [f"pre.bn1.{p}" for p in _BN]
    keys += [f"pre.res1.{k}" for k in res + skip] + [f"pre.res2.{k}" for k in res]
    keys += [f"pre.dilation.{i}.{k}" for i in range(6) for k in cbn]
    depth = model.num_scales - 1
    for s in range(model.num_stacks):
        for d in range(depth):
            keys += [f"hourglass.{s}.hg.{d}.0.{k}" for k in res]
            keys += [f"hourglass.{s}.hg.{d}.{slot}.{k}" for slot in (1, 2) for k in res + skip]
            keys += [f"hourglass.{s}.hg.{d}.3.{k}" for k in cbn]
        keys += [f"hourglass.{s}.hg.{depth - 1}.4.{k}" for k in res]
        for j in range(model.num_scales):
            keys += [f"features.{s}.before_regress.{j}.{i}.{k}" for i in (0, 1) for k in cbn]
            keys += [
                f"features.{s}.before_regress.{j}.2.fc.{i}.{p}"
                for i in (0, 2)
                for p in ("weight", "bias")
            ]
            keys += [f"outs.{s}.{j}.conv.weight", f"outs.{s}.{j}.conv.bias"]
            if s < model.num_stacks - 1:
                keys += [f"merge_{m}.{s}.{j}.conv.{k}" for m in ("preds", "features") for k in cbn]
    return keys


_BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _script():
    spec = importlib.util.spec_from_file_location(
        "convert_checkpoint_script", REPO / "data_prep" / "convert_checkpoint.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_convert_script_end_to_end(tmp_path, tiny, capsys):
    src = tmp_path / "released.pth"
    torch.save(_reference_layout(tiny), src)
    out = tmp_path / "imhn_tiny.safetensors"
    assert _script().main(["--from", "simplepose", "--input", str(src), "--output", str(out)]) == 0
    assert f"wrote {out}: model imhn" in capsys.readouterr().out
    model, meta = load_model(out, expected_model="imhn")
    assert meta["converted_from"] == "simplepose" and meta["source_file"] == "released.pth"
    assert json.dumps(meta["model_kwargs"], sort_keys=True) == json.dumps(
        dict(TINY, out_dim=50), sort_keys=True
    )
    for a, b in zip(_outputs(model, seed=3), _outputs(tiny, seed=3)):
        assert torch.equal(a, b)


def test_convert_script_errors(tmp_path, tiny, capsys):
    script = _script()
    assert (
        script.main(
            ["--from", "simplepose", str(tmp_path / "missing.pth"), str(tmp_path / "o.safetensors")]
        )
        == 2
    )
    assert "does not exist" in capsys.readouterr().err
    src = tmp_path / "released.pth"
    torch.save(_reference_layout(tiny), src)
    rc = script.main(
        [
            "--from",
            "simplepose",
            str(src),
            str(tmp_path / "o.safetensors"),
            "--model-kwargs",
            '{"out_dim": 17}',
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "shape mismatch" in err and err.count("\n") == 1
    assert (
        script.main(
            ["--from", "simplepose", "--model", "cpn50", str(src), str(tmp_path / "o.safetensors")]
        )
        == 2
    )
    assert "does not fit --from simplepose" in capsys.readouterr().err
    assert not (tmp_path / "o.safetensors").exists()
