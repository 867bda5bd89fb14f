"""IMHN and the SimplePose checkpoint converter: parameter count, shapes, reference parity."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from simplepose.convert import convert_state_dict
from simplepose.convert.simplepose_imhn import (
    convert_simplepose,
    infer_imhn_kwargs,
    reference_key_to_ours,
)
from simplepose.errors import CheckpointError, InputError
from simplepose.models.imhn import IMHN_DEFAULTS, build_imhn
from simplepose.spec import build_model

REPO = Path(__file__).resolve().parents[2]
PARITY_DIR = REPO.parent / "shared" / "fixtures" / "parity"
TINY = {"num_stacks": 2, "inp_dim": 32, "increase": 16, "stem_channels": 16, "se_reduction": 4}


def _n_params(module):
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


@pytest.fixture(scope="module")
def meta_default():
    with torch.device("meta"):  # shapes only: no memory, no init
        return build_imhn()


def _reference_meta_state_dict():
    """The official key list (imhn.json) as meta tensors: converter tests without 0.5 GB."""
    path = PARITY_DIR / "imhn.json"
    if not path.is_file():
        pytest.skip(f"parity fixtures not found at {PARITY_DIR}")
    entries = json.loads(path.read_text())["state_dict"]
    return {
        e["key"]: torch.empty(
            e["shape"], dtype=getattr(torch, e["dtype"].split(".")[1]), device="meta"
        )
        for e in entries
    }


def _load_parity_module():
    if not (PARITY_DIR / "parity.py").is_file():
        pytest.skip(
            f"parity fixtures not found at {PARITY_DIR} (expected <repo>/../shared/fixtures/parity)"
        )
    spec = importlib.util.spec_from_file_location(
        "simplepose_test_parity_helpers", PARITY_DIR / "parity.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_default_parameter_count_matches_reference(meta_default):
    assert _n_params(meta_default) == 128_998_760
    # Per-part checksums from SPEC 3.5 (stem 1.008 M, hourglass 22.44 M, features 8.89 M per stack,
    # ...)
    assert _n_params(meta_default.stem) == 1_007_680
    assert _n_params(meta_default.hourglasses[0]) == 22_443_520
    assert _n_params(meta_default.features[0]) == 8_894_800
    assert _n_params(meta_default.heads[0]) == 64_250
    assert (
        _n_params(meta_default.merge_preds[0]) + _n_params(meta_default.merge_features[0])
        == 793_600
    )
    assert len(meta_default.state_dict()) == 1848  # same entry count as the official checkpoint


def test_registry_builds_imhn():
    with torch.device("meta"):
        model = build_model("imhn", **TINY)
    assert model.num_stacks == 2 and model.num_scales == 5


def test_tiny_output_shapes_and_init():
    torch.manual_seed(0)
    model = build_imhn(**TINY).eval()
    x = torch.rand(2, 3, 64, 128)
    with torch.no_grad():
        out = model(x)
    assert len(out) == 2
    for stack in out:
        assert [tuple(t.shape) for t in stack] == [(2, 50, 16 >> j, 32 >> j) for j in range(5)]
        assert all(torch.isfinite(t).all() for t in stack)
    w = model.stem.conv1.conv.weight.detach()
    assert abs(float(w.std()) - 1e-3) < 2e-4  # N(0, 0.001) conv init
    assert float(model.heads[0][0].bias.detach().abs().max()) == 0.0
    assert float(model.features[0][0].se.fc1.weight.detach().std()) == pytest.approx(0.01, rel=0.3)


def test_fewer_scales_and_one_stack():
    model = build_imhn(
        num_stacks=1,
        inp_dim=32,
        increase=16,
        stem_channels=16,
        se_reduction=4,
        num_scales=3,
        out_dim=7,
    ).eval()
    assert model.stride_multiple == 16
    with torch.no_grad():
        out = model(torch.rand(1, 3, 32, 48))
    assert [tuple(t.shape) for t in out[0]] == [(1, 7, 8, 12), (1, 7, 4, 6), (1, 7, 2, 3)]
    assert len(model.merge_preds) == 0


def test_bad_input_and_options_raise():
    model = build_imhn(**TINY)
    with pytest.raises(InputError, match="multiples of 64"):
        model(torch.rand(1, 3, 64, 96))
    with pytest.raises(InputError, match="NCHW"):
        model(torch.rand(1, 64, 64, 3))
    with pytest.raises(InputError, match="unknown IMHN option"):
        build_imhn(nstack=2)
    with pytest.raises(InputError, match="norm"):
        build_imhn(**TINY, norm="gn")


def test_syncbn_option_builds():
    with torch.device("meta"):
        model = build_imhn(**TINY, norm="syncbn")
    assert isinstance(model.stem.conv1.bn, torch.nn.SyncBatchNorm)


def test_converter_maps_official_keys_onto_default_model(meta_default):
    ref = _reference_meta_state_dict()
    ours = convert_simplepose(ref)
    expected = meta_default.state_dict()
    assert list(ours) == list(expected)
    assert all(tuple(ours[k].shape) == tuple(expected[k].shape) for k in expected)
    assert infer_imhn_kwargs(ours) == {k: v for k, v in IMHN_DEFAULTS.items() if k != "norm"}
    # The mapping is one-to-one: tensors are passed through, never copied or merged.
    assert len({id(v) for v in ours.values()}) == len(ref)


def test_converter_accepts_containers_and_prefixes():
    ref = _reference_meta_state_dict()
    bare = {k[len("posenet.") :]: v for k, v in ref.items()}
    ddp = {"module." + k: v for k, v in ref.items()}
    no_counter = {k: v for k, v in ref.items() if not k.endswith("num_batches_tracked")}
    for variant in ({"weights": ref, "epoch": 3}, {"state_dict": ddp}, bare, no_counter):
        ours = convert_state_dict("simplepose", variant)
        assert len(ours) == 1848
    filled = convert_simplepose(no_counter)["stem.conv1.bn.num_batches_tracked"]
    assert filled.dtype == torch.long and int(filled) == 0


def test_converter_rejects_non_imhn_checkpoints():
    ref = _reference_meta_state_dict()
    with pytest.raises(CheckpointError, match="none of its 2 keys"):
        convert_simplepose({"layer1.0.conv1.weight": torch.zeros(1), "fc.weight": torch.zeros(1)})
    with pytest.raises(CheckpointError, match="not a state dict"):
        convert_simplepose({"epoch": 3, "optimizer": {"lr": 0.1}})
    missing = dict(ref)
    del missing["posenet.hourglass.1.hg.2.3.conv.weight"]
    with pytest.raises(
        CheckpointError, match=r"1 missing: hourglasses\.1\.levels\.2\.fuse\.conv\.weight"
    ):
        convert_simplepose(missing)
    extra = dict(
        ref, **{"posenet.outs.0.0.extra": torch.zeros(1), "posenet.foo.bar": torch.zeros(1)}
    )
    with pytest.raises(CheckpointError, match=r"2 unexpected: .*foo\.bar"):
        convert_simplepose(extra)
    bad_shape = dict(ref)
    bad_shape["posenet.features.2.before_regress.1.0.conv.weight"] = torch.empty(
        256, 999, 3, 3, device="meta"
    )
    with pytest.raises(
        CheckpointError, match=r"shape mismatch: features\.2\.1\.conv1\.conv\.weight"
    ):
        convert_simplepose(bad_shape)


def test_converter_rejects_slot4_outside_deepest_level():
    ref = _reference_meta_state_dict()
    moved = {k.replace("hg.3.4.", "hg.2.4."): v for k, v in ref.items()}
    with pytest.raises(CheckpointError, match="slot 4"):
        convert_simplepose(moved)


def testreference_key_to_ours_examples():
    assert (
        reference_key_to_ours("pre.res1.skipConv.1.running_var")
        == "stem.res1.shortcut.bn.running_var"
    )
    assert (
        reference_key_to_ours("hourglass.2.hg.0.1.convBlock.6.weight")
        == "hourglasses.2.levels.0.down.conv3.weight"
    )
    assert (
        reference_key_to_ours("features.3.before_regress.4.2.fc.2.bias")
        == "features.3.4.se.fc2.bias"
    )
    assert reference_key_to_ours("merge_preds.0.1.conv.bn.weight") == "merge_preds.0.1.bn.weight"
    assert reference_key_to_ours("outs.1.4.conv.bias") == "heads.1.4.bias"
    assert reference_key_to_ours("pre.something_else.weight") is None


@pytest.mark.slow  # 8 s on an idle 2-core CPU, 15-30 s under load; about 0.9 GB of memory
def test_parity_with_reference_fixture():
    """Fill the official keys with the fixture filler, convert, load strictly, compare outputs."""
    parity = _load_parity_module()
    fx = parity.load_fixture("imhn", str(PARITY_DIR))  # also checks the fill digest
    assert (
        fx["meta"]["checkpoint_container_key"] == "weights"
        and fx["meta"]["key_prefix"] == "posenet."
    )
    ours = convert_state_dict("simplepose", {"weights": fx["ref_state_dict"]})
    with torch.device("meta"):
        model = build_imhn()
    model.load_state_dict(ours, strict=True, assign=True)
    model.eval()
    with torch.no_grad():
        out = model(torch.from_numpy(fx["input"]))  # stored NCHW, BGR/255-like
    got = [t for stack in out for t in stack]
    names = [o["name"] for o in fx["meta"]["outputs"]]
    assert parity.compare_outputs(fx["outputs"], got, names)  # rtol 1e-4, atol 1e-4 * max|ref|
    worst = max(
        float(np.abs(g.numpy() - r).max() / np.abs(r).max()) for g, r in zip(got, fx["outputs"])
    )
    assert worst < 2e-5  # float32 noise is ~3e-6; the weakest bug tested in the README is 1e-2
