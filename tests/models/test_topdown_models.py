"""Top-down models (CPN, MSPN, RSN), their ResNet trunks and the checkpoint converters.

* parameter-count checksums (SPEC 4.3, 5.3, 6.1), counted on the ``meta`` device: no
  memory, no forward;
* output shapes on small inputs;
* golden parity against the reference implementations (``shared/fixtures/parity``): fill
  the reference keys, convert, ``load_state_dict(strict=True)``, eval, compare every output
  and aux output with the fixture README's criterion;
* converter behaviour: prefixes, containers, missing ``num_batches_tracked``, and
  :class:`CheckpointError` for checkpoints of another model.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from simplepose.convert import convert_state_dict
from simplepose.convert.topdown import convert_mspn, convert_pytorch_cpn, convert_rsn
from simplepose.errors import CheckpointError
from simplepose.models.cpn import build_cpn50
from simplepose.models.mspn import MSPN, MSPNBottleneck, build_mspn
from simplepose.models.resnet import resnet18, resnet50, resnet101
from simplepose.models.rsn import PRM, ResidualStepsBlock, build_rsn18, build_rsn50
from simplepose.spec import build_model

REPO = Path(__file__).resolve().parents[2]
PARITY_DIR = REPO.parent / "shared" / "fixtures" / "parity"


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def meta_build(fn, **kw):
    with torch.device("meta"):
        return fn(**kw)


# --------------------------------------------------------------------------- param counts

@pytest.mark.parametrize("name, kw, expected", [
    ("cpn50", {}, 27_406_826),
    ("cpn101", {}, 46_398_954),
    ("mspn", {"num_stages": 1}, 25_141_708),
    ("mspn", {"num_stages": 2}, 56_867_032),
    ("mspn", {"num_stages": 3}, 88_592_356),
    ("mspn", {"num_stages": 4}, 120_317_680),
    ("rsn18", {"num_stages": 1}, 9_159_072),
    ("rsn18", {"num_stages": 4}, 38_456_256),
    ("rsn18", {"num_stages": 1, "use_prm": True}, 9_159_072 + 5_100),
])
def test_parameter_count(name, kw, expected):
    """Registry builders reproduce the reference parameter counts (K = 17)."""
    assert n_params(meta_build(build_model, name=name, **kw)) == expected


@pytest.mark.parametrize("fn, with_fc, without_fc", [
    (resnet18, 11_689_512, 11_176_512),
    (resnet50, 25_557_032, 23_508_032),
    (resnet101, 44_549_160, 42_500_160),
])
def test_resnet_parameter_count(fn, with_fc, without_fc):
    """ImageNet ResNet sizes with the 1000-class fc and without it."""
    assert n_params(meta_build(fn, num_classes=1000)) == with_fc
    assert n_params(meta_build(fn)) == without_fc


def test_prm_parameter_count():
    assert n_params(PRM(17)) == 5_100


def test_resnet_imagenet_names_and_features():
    """torchvision-compatible names; fc dropped on load; 4 stage features at /4../32."""
    full = resnet18(num_classes=1000)
    keys = set(full.state_dict())
    assert {"conv1.weight", "bn1.running_var", "layer2.0.downsample.0.weight",
            "layer2.0.downsample.1.weight", "layer4.1.conv2.weight", "fc.weight"} <= keys
    trunk = resnet18()
    sd = {"module." + k: v for k, v in full.state_dict().items()}
    trunk.load_imagenet(sd)  # strict: fc.* dropped, module. stripped
    trunk.eval()
    full.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        feats = trunk(x)
        assert [tuple(f.shape) for f in feats] == [
            (1, 64, 16, 16), (1, 128, 8, 8), (1, 256, 4, 4), (1, 512, 2, 2)]
        assert full.classify(full(x)[-1]).shape == (1, 1000)
        assert torch.equal(feats[-1], full(x)[-1])


# --------------------------------------------------------------------------- output shapes

def test_cpn_output_shapes():
    model = build_cpn50(input_size=(64, 64), num_keypoints=5).eval()
    with torch.no_grad():
        global_outs, refine = model(torch.randn(2, 3, 64, 64))
    assert len(global_outs) == 4
    assert all(tuple(g.shape) == (2, 5, 16, 16) for g in global_outs)
    assert tuple(refine.shape) == (2, 5, 16, 16)
    # The two released input sizes fix the heatmap size to input / 4.
    assert meta_build(build_model, name="cpn101", input_size=(384, 288)).output_shape == (96, 72)
    assert meta_build(build_model, name="cpn50").output_shape == (64, 48)


def test_mspn_output_shapes_and_modes():
    # one block per ResNet layer: the stage/mode logic of build_mspn's model at a fraction
    # of the build cost (the builder's layout is checked by the parameter counts)
    model = MSPN(MSPNBottleneck, (1, 1, 1, 1), num_stages=2, num_keypoints=3,
                 output_shape=(16, 16))
    assert meta_build(build_mspn, num_stages=2, input_size=(64, 64)).output_shape == (16, 16)
    x = torch.randn(2, 3, 64, 64)
    model.train()
    with torch.no_grad():
        heatmap, stages = model(x)  # training mode returns every stage's units
    assert len(stages) == 2 and all(len(s) == 4 for s in stages)
    assert all(tuple(h.shape) == (2, 3, 16, 16) for s in stages for h in s)
    assert stages[-1][-1] is heatmap
    model.eval()
    with torch.no_grad():
        out = model(x)
        assert torch.is_tensor(out) and tuple(out.shape) == (2, 3, 16, 16)
        out2, stages2 = model(x, return_stages=True)
    assert torch.equal(out, out2) and len(stages2) == 2


def test_rsn_output_shapes_with_prm():
    # RSN blocks, one per layer (RSN-18 has two): same modules and paths, cheaper to build
    model = MSPN(ResidualStepsBlock, (1, 1, 1, 1), num_stages=2, num_keypoints=17,
                 output_shape=(16, 16), block_kwargs={"num_steps": 4}, prm=PRM(17)).train()
    assert meta_build(build_rsn18, num_stages=2, input_size=(64, 64),
                      use_prm=True).output_shape == (16, 16)
    heatmap, stages = model(torch.randn(2, 3, 64, 64))
    assert tuple(heatmap.shape) == (2, 17, 16, 16)
    assert [len(s) for s in stages] == [4, 4]
    assert stages[-1][-1] is heatmap
    heatmap.mean().backward()  # gradients reach the PRM and the first stage
    assert model.prm.conv_bn_relu_prm_3_2.conv.weight.grad is not None
    assert model.stage0.downsample.layer1[0].conv_bn_relu2_4_4.conv.weight.grad is not None
    model.eval()
    with torch.no_grad():
        assert tuple(model(torch.randn(1, 3, 64, 64)).shape) == (1, 17, 16, 16)


def test_rsn50_output_shape():
    model = build_rsn50(num_stages=1, input_size=(64, 64)).eval()
    with torch.no_grad():
        assert tuple(model(torch.randn(1, 3, 64, 64)).shape) == (1, 17, 16, 16)


# --------------------------------------------------------------------------- parity

def _load_parity():
    if not (PARITY_DIR / "parity.py").exists():
        pytest.skip(f"parity fixtures not found at {PARITY_DIR} (shared/ checkout absent)")
    spec = importlib.util.spec_from_file_location("_sp_parity", PARITY_DIR / "parity.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


PARITY_CASES = {
    "cpn50": ("pytorch-cpn", "cpn50", {}),
    "cpn101": ("pytorch-cpn", "cpn101", {}),
    "mspn_2stg": ("mspn", "mspn", {"num_stages": 2}),
    "rsn18_1stg": ("rsn", "rsn18", {"num_stages": 1}),
    "rsn18_4stg": ("rsn", "rsn18", {"num_stages": 4}),
}


@pytest.mark.parametrize("fixture", [
    "cpn50",
    pytest.param("cpn101", marks=pytest.mark.slow),
    pytest.param("mspn_2stg", marks=pytest.mark.slow),
    "rsn18_1stg",
    pytest.param("rsn18_4stg", marks=pytest.mark.slow),
])
def test_parity(fixture):
    """Reference weights (deterministic filler) -> converter -> strict load -> same outputs."""
    parity = _load_parity()
    source, model_name, kw = PARITY_CASES[fixture]
    fx = parity.load_fixture(fixture, str(PARITY_DIR))  # fills and checks the digest
    meta = fx["meta"]
    checkpoint = {meta["checkpoint_container_key"]: fx["ref_state_dict"], "epoch": 1}
    state_dict = convert_state_dict(source, checkpoint)
    model = build_model(model_name, **kw)
    model.load_state_dict(state_dict, strict=True)
    model.eval()
    with torch.no_grad():
        if model_name.startswith("cpn"):
            global_outs, refine = model(torch.from_numpy(fx["input"]))
            got, aux = [*global_outs, refine], []
        else:
            heatmap, stages = model(torch.from_numpy(fx["input"]), return_stages=True)
            got, aux = [heatmap], [h for stage in stages for h in stage]
    names = [o["name"] for o in meta["outputs"]]
    assert parity.compare_outputs(fx["outputs"], got, names), f"{fixture} outputs differ"
    assert len(aux) == len(fx["aux"])
    if aux:
        aux_names = [o["name"] for o in meta["aux_outputs"]]
        assert parity.compare_outputs(fx["aux"], aux, aux_names), f"{fixture} aux differ"


# --------------------------------------------------------------------------- converters

def _meta_ref_state_dict(fixture):
    """The fixture's reference key list as meta tensors (shapes only, no memory)."""
    path = PARITY_DIR / f"{fixture}.json"
    if not path.exists():
        pytest.skip(f"parity fixtures not found at {PARITY_DIR} (shared/ checkout absent)")
    entries = json.loads(path.read_text())["state_dict"]
    return {e["key"]: torch.empty(e["shape"], device="meta",
                                  dtype=getattr(torch, e["dtype"].replace("torch.", "")))
            for e in entries}


def test_convert_cpn_detects_depth_and_strips_prefix():
    sd50 = _meta_ref_state_dict("cpn50")  # keys carry "module."
    out = convert_pytorch_cpn({"state_dict": sd50, "epoch": 3})
    assert set(out) == set(meta_build(build_model, name="cpn50").state_dict())
    bare = {k[len("module."):]: v for k, v in sd50.items()}
    assert list(convert_pytorch_cpn(bare)) == list(out)
    out101 = convert_pytorch_cpn(_meta_ref_state_dict("cpn101"))
    assert set(out101) == set(meta_build(build_model, name="cpn101").state_dict())


def test_convert_multistage_containers_prefix_and_old_bn():
    sd = _meta_ref_state_dict("mspn_2stg")
    wrapped = {"model": {"module." + k: v for k, v in sd.items()
                         if not k.endswith("num_batches_tracked")}}
    out = convert_mspn(wrapped)
    assert list(out) == list(meta_build(build_mspn, num_stages=2).state_dict())
    assert out["top.conv.bn.num_batches_tracked"].dtype == torch.int64
    out_rsn = convert_rsn(_meta_ref_state_dict("rsn18_4stg"))
    assert len(out_rsn) == 3388


def test_convert_rejects_other_models():
    rsn = _meta_ref_state_dict("rsn18_1stg")
    with pytest.raises(CheckpointError, match=r"\d+ missing: ") as err:
        convert_mspn({"model": rsn})
    assert "unexpected: " in str(err.value) and "shape mismatch: " in str(err.value)
    assert "\n" not in str(err.value)
    with pytest.raises(CheckpointError, match="not a multi-stage"):
        convert_rsn(_meta_ref_state_dict("cpn50"))
    with pytest.raises(CheckpointError, match="layer3"):
        convert_pytorch_cpn(rsn)
    mspn = _meta_ref_state_dict("mspn_2stg")
    with pytest.raises(CheckpointError, match="RSN-50.*missing: "):
        convert_rsn(mspn)  # same blocks per layer as RSN-50, but bottleneck names
    # A shape mismatch against an explicitly given model (K = 17 checkpoint, K = 5 model).
    with pytest.raises(CheckpointError, match="shape mismatch: "):
        convert_mspn(mspn, model=meta_build(build_mspn, num_stages=2, num_keypoints=5))
