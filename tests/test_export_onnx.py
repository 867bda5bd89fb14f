"""ONNX export (simplepose.export) and the ONNX Runtime backend (inference/onnx_backend.py).

Fast: one tiny IMHN export through the command line, checked for parity at the example size and
at other sizes / batch sizes (dynamic axes), as a drop-in model in the bottom-up pipeline, plus
the bad-input paths. Slow: every registered model at tiny inputs, and the bundled model on a
real image end to end.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from conftest import REPO

torch = pytest.importorskip("torch")
pytest.importorskip("onnxscript")

from simplepose.errors import CheckpointError, InputError
from simplepose.export import ATOL, example_input, export_onnx, main, normalise_images
from simplepose.inference.onnx_backend import (
    OnnxRuntimeModel,
    flatten_outputs,
    output_names,
    read_onnx_metadata,
    unflatten_outputs,
)

SAMPLE_IMAGE = REPO / "assets" / "sample_group.jpg"
TINY_IMHN = {"num_stacks": 2, "inp_dim": 16, "increase": 8, "stem_channels": 8,
             "se_reduction": 4, "num_scales": 3}
#: smallest configuration of every registered model (top-down: a 64x48 crop)
TINY_KWARGS = {
    "imhn": TINY_IMHN,
    "openpose_mobilenet_thin": {},
    "cpn50": {"input_size": [64, 48]},
    "cpn101": {"input_size": [64, 48]},
    "mspn": {"input_size": [64, 48], "num_stages": 1},
    "rsn18": {"input_size": [64, 48], "num_stages": 1},
    "rsn50": {"input_size": [64, 48], "num_stages": 1},
}


def _rel_diff(got, ref) -> float:
    """max |got - ref| / max(1, max |ref|) over the flat outputs (the export's parity measure)."""
    return max(float(np.abs(np.asarray(g) - np.asarray(r)).max()) / max(1.0, float(np.abs(r).max()))
               for g, r in zip(got, ref, strict=True))


def _torch_flat(module, x: np.ndarray) -> list[np.ndarray]:
    with torch.no_grad():
        leaves, _ = flatten_outputs(module(torch.from_numpy(x)))
    return [t.numpy() for t in leaves]


def _scaled_init(module, seed: int = 0):
    """Kaiming-normal conv weights: IMHN's reference init (N(0, 0.001)) makes every output
    ~1e-15, which would let any graph pass a 1e-4 parity check."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.Conv2d):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (1.0 / fan_in) ** 0.5)
    return module.eval()


def _real_example(meta_input: dict, batch: int = 2, height=None, width=None) -> np.ndarray:
    """The sample photo, resized to the network input and normalised as the metadata says."""
    image = cv2.imread(str(SAMPLE_IMAGE))
    assert image is not None
    shape = example_input(meta_input, height, width, batch=1).shape
    crops = [cv2.resize(np.roll(image, 37 * i, axis=1), (shape[3], shape[2])) for i in range(batch)]
    return normalise_images(crops, meta_input)


# ------------------------------------------------------------------------ fast: tiny IMHN
@pytest.fixture(scope="module")
def tiny_imhn_onnx(tmp_path_factory):
    """A tiny IMHN checkpoint exported through the command line, and the torch model."""
    from simplepose.checkpoint import save_model
    from simplepose.spec import get_spec

    folder = tmp_path_factory.mktemp("onnx")
    spec = get_spec("imhn").with_kwargs(**TINY_IMHN)
    module = _scaled_init(spec.build_model())
    ckpt = folder / "imhn.safetensors"
    save_model(ckpt, spec, module.state_dict(), extra_meta={"epoch": 7})
    out = folder / "imhn.onnx"
    assert (
        main(["--model", str(ckpt), "--output", str(out), "--height", "96", "--width", "128"]) == 0
    )
    return out, module


def test_metadata_roundtrip(tiny_imhn_onnx):
    path, _ = tiny_imhn_onnx
    from simplepose.spec import get_spec

    meta = read_onnx_metadata(path)
    assert meta["spec"] == get_spec("imhn").with_kwargs(**TINY_IMHN)  # the whole spec
    assert meta["simplepose_model"] == "imhn"
    assert meta["model_kwargs"] == TINY_IMHN
    assert meta["simplepose_paradigm"] == "bottomup"
    assert meta["simplepose_checkpoint"]["epoch"] == "7"
    inp = meta["simplepose_input"]
    assert inp["height"] == {"multiple": 16} and inp["width"] == {"multiple": 16}
    assert inp["std"] == [255.0] * 3 and inp["channel_order"] == "bgr" and inp["pad_multiple"] == 64
    # 2 stacks x 3 scales, nested as the torch forward returns them
    assert meta["simplepose_outputs"] == [[0, 1, 2], [3, 4, 5]]


@pytest.mark.parametrize("shape", [(2, 3, 96, 128), (1, 3, 64, 160), (3, 3, 112, 48)])
def test_tiny_imhn_parity_dynamic_axes(tiny_imhn_onnx, shape):
    path, module = tiny_imhn_onnx
    onnx_model = OnnxRuntimeModel(path)
    x = _real_example(onnx_model.meta["simplepose_input"], shape[0], shape[2], shape[3])
    ref = _torch_flat(module, x)
    assert max(float(np.abs(r).max()) for r in ref) > 1e-2  # the check is not vacuous
    out = onnx_model(torch.from_numpy(x))  # torch in -> nested torch out
    assert isinstance(out, list) and len(out) == 2 and len(out[1]) == 3
    assert all(isinstance(t, torch.Tensor) for s in out for t in s)
    leaves, _ = flatten_outputs(out)
    assert [tuple(t.shape) for t in leaves] == [r.shape for r in ref]
    assert _rel_diff([t.numpy() for t in leaves], ref) <= ATOL


def test_drop_in_bottomup_pipeline(tiny_imhn_onnx):
    """The pipeline runs its own prepare / decode around the ONNX model: same maps."""
    from simplepose.inference.bottomup import BottomUpPipeline

    path, module = tiny_imhn_onnx
    image = cv2.imread(str(SAMPLE_IMAGE))
    kw = {"box_size": 128, "flip": True}
    onnx_model = OnnxRuntimeModel(path)
    ref, g_ref = BottomUpPipeline(module, onnx_model.spec, **kw).maps(image)
    got, g_got = BottomUpPipeline(onnx_model, onnx_model.spec, **kw).maps(image)
    assert g_ref == g_got
    assert _rel_diff([got], [ref]) <= ATOL


def test_input_description_uses_the_pipeline_defaults():
    """A bottom-up spec without ``box_size`` / ``pad_multiple`` is described with the values
    BottomUpPipeline runs it at (one set of defaults)."""
    from simplepose.export import input_description
    from simplepose.inference.bottomup import BottomUpPipeline
    from simplepose.spec import get_spec

    base = get_spec("openpose_mobilenet_thin")
    spec = base.replace(name="bare_openpose", inference={"params": base.inference["params"]})
    desc = input_description(spec)
    pipeline = BottomUpPipeline(None, spec)
    assert desc["pad_multiple"] == pipeline.pad_multiple
    assert desc["box_size"] == pipeline.box_size
    assert desc["height"] == desc["width"] == {"multiple": pipeline.pad_multiple}


def test_backend_rejects_wrong_input_size(tiny_imhn_onnx):
    path, _ = tiny_imhn_onnx
    with pytest.raises(InputError, match="multiple of 16"):
        OnnxRuntimeModel(path).run(np.zeros((1, 3, 100, 128), np.float32))
    with pytest.raises(InputError, match=r"\(N, 3, H, W\)"):
        OnnxRuntimeModel(path).run(np.zeros((3, 96, 128), np.float32))


def test_flatten_unflatten_roundtrip():
    a, b, c = (np.full((1,), i) for i in range(3))
    nested = ([a, b], c)
    leaves, structure = flatten_outputs(nested)
    assert structure == {"tuple": [[0, 1], 2]}
    assert output_names(structure) == ["output_0_0", "output_0_1", "output_1"]
    back = unflatten_outputs(leaves, json.loads(json.dumps(structure)))
    assert isinstance(back, tuple) and isinstance(back[0], list) and back[1] is c
    assert output_names(flatten_outputs(a)[1]) == ["output"]


# ------------------------------------------------------------------------------ bad input
def test_unknown_model_one_line(tmp_path, capsys):
    assert main(["--model", "no_such_model", "--output", str(tmp_path / "x.onnx")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown model 'no_such_model'" in err


def test_checkpoint_of_unknown_model(tmp_path, capsys):
    from safetensors.torch import save_file

    ckpt = tmp_path / "alien.safetensors"
    save_file({"w": torch.zeros(2)}, str(ckpt), metadata={
        "simplepose_model": "alienpose", "model_kwargs": "{}", "format_version": "1"})
    assert main(["--model", str(ckpt), "--output", str(tmp_path / "x.onnx")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "alienpose" in err
    assert not (tmp_path / "x.onnx").exists()


def test_missing_output_folder(tmp_path, capsys):
    out = tmp_path / "nope" / "x.onnx"
    assert main(["--model", "imhn", "--output", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "does not exist" in err and "nope" in err


@pytest.mark.parametrize("opset", ["5", "99"])
def test_unusable_opset(tmp_path, capsys, opset):
    assert main(["--model", "imhn", "--output", str(tmp_path / "x.onnx"), "--opset", opset]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"opset {opset}" in err


def test_output_must_be_onnx(tmp_path, tiny_imhn_checkpoint, capsys):
    assert main(["--model", str(tiny_imhn_checkpoint), "--output", str(tmp_path / "x.txt")]) == 2
    assert ".onnx" in capsys.readouterr().err


def _plain_onnx(path, metadata: dict | None = None):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["input"], ["output"])], "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3, "H", "W"])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    for k, v in (metadata or {}).items():
        model.metadata_props.add(key=k, value=v)
    onnx.save_model(model, str(path))
    return path


def test_onnx_without_metadata_names_what_is_missing(tmp_path):
    path = _plain_onnx(tmp_path / "plain.onnx")
    with pytest.raises(CheckpointError, match="no simplepose metadata: missing simplepose_format"):
        OnnxRuntimeModel(path)
    partial = _plain_onnx(tmp_path / "partial.onnx", {"simplepose_format": "1",
                                                      "simplepose_model": "imhn"})
    with pytest.raises(CheckpointError) as exc:
        read_onnx_metadata(partial)
    msg = str(exc.value)
    assert "model_kwargs" in msg and "simplepose_outputs" in msg and "simplepose_model," not in msg


def test_backend_bad_files(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        OnnxRuntimeModel(tmp_path / "missing.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(CheckpointError, match="not a loadable ONNX model"):
        OnnxRuntimeModel(junk)


# --------------------------------------------------------------------- slow: every model
def test_every_registered_model_has_a_tiny_config():
    from simplepose.spec import available_specs

    assert sorted(TINY_KWARGS) == sorted(available_specs())


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TINY_KWARGS))
def test_export_parity_every_model(tmp_path, name):
    """Export at tiny inputs; ONNX Runtime equals PyTorch to 1e-4 (relative to the map range)
    on the sample photo, and again at a second batch size (and size, for bottom-up)."""
    from simplepose.export import load_for_export

    module, spec, _ = load_for_export(name, TINY_KWARGS[name])
    if name == "imhn":
        module = _scaled_init(module)
    out = tmp_path / f"{name}.onnx"
    report = export_onnx(module, spec, out, check=False)
    onnx_model = OnnxRuntimeModel(out)
    meta_input = onnx_model.meta["simplepose_input"]
    cases = [(2, None, None), (1, None, None)]
    if "multiple" in meta_input["height"]:
        m = meta_input["height"]["multiple"]
        cases.append((3, 5 * m if m > 8 else 240, 3 * m if m > 8 else 320))
    for batch, h, w in cases:
        x = _real_example(meta_input, batch, h, w)
        ref = _torch_flat(module, x)
        got = onnx_model.run(x)
        assert [g.shape for g in got] == [r.shape for r in ref], (name, batch, h, w)
        assert _rel_diff(got, ref) <= ATOL, (name, batch, h, w)
    assert len(report["outputs"]) == len(got)


@pytest.mark.slow
def test_bundled_model_real_image_end_to_end(tmp_path):
    """The bundled model, exported with its weights: maps within 1e-4 and the same people."""
    from simplepose.inference.bottomup import BottomUpPipeline
    from simplepose.spec import get_spec

    out = tmp_path / "op.onnx"
    assert main(["--model", "openpose_mobilenet_thin", "--output", str(out)]) == 0
    image = cv2.imread(str(SAMPLE_IMAGE))
    spec = get_spec("openpose_mobilenet_thin")
    torch_pipe = BottomUpPipeline(spec.build_model(pretrained=True), spec)
    onnx_pipe = BottomUpPipeline(OnnxRuntimeModel(out), spec)
    (m_ref, _), (m_got, _) = torch_pipe.maps(image), onnx_pipe.maps(image)
    assert float(np.abs(m_got - m_ref).max()) <= ATOL
    ref_people, got_people = torch_pipe.predict(image), onnx_pipe.predict(image)
    assert len(ref_people) == len(got_people) >= 3
    for a, b in zip(ref_people, got_people):
        np.testing.assert_allclose(a.keypoints, b.keypoints, atol=1e-2)


# --------------------------------------------------------------- Predictor backend switch
def test_predictor_from_onnx_matches_torch(tiny_imhn_onnx):
    from simplepose.predictor import Predictor

    path, module = tiny_imhn_onnx
    image = cv2.imread(str(SAMPLE_IMAGE))
    onnx_pred = Predictor.from_checkpoint(path, box_size=128)  # a .onnx path picks onnxruntime
    assert onnx_pred.backend == "onnxruntime" and onnx_pred.model_name == "imhn"
    torch_pred = Predictor.from_spec(onnx_pred.spec, module, device="cpu", box_size=128)
    assert torch_pred.backend == "torch"
    inputs = torch_pred.prepare(image)
    ref, got = torch_pred.forward(inputs), onnx_pred.forward(onnx_pred.prepare(image))
    assert _rel_diff(got, ref) <= ATOL
    a, b = torch_pred.predict(image), onnx_pred.predict(image)
    assert len(a) == len(b)
    for p, q in zip(a, b):
        np.testing.assert_allclose(p.keypoints, q.keypoints, atol=1e-2)


def test_predictor_backend_errors(tiny_imhn_onnx, tmp_path):
    from simplepose.predictor import Predictor

    path, _ = tiny_imhn_onnx
    with pytest.raises(InputError, match="runs with backend 'onnxruntime'"):
        Predictor.from_checkpoint(path, backend="torch")
    with pytest.raises(InputError, match="unknown backend 'tensorrt'"):
        Predictor.from_checkpoint(path, backend="tensorrt")
    with pytest.raises(InputError, match="CUDA|cuda"):
        Predictor.from_onnx(path, device="cuda")
    plain = _plain_onnx(tmp_path / "plain.onnx")
    with pytest.raises(CheckpointError, match="no simplepose metadata: missing simplepose_format"):
        Predictor.from_onnx(plain)


def test_evaluate_backend_flag_combinations(capsys):
    from simplepose.cli.evaluate import parse_args

    ann = ["--ann", "a.json", "--metrics", "m.json"]
    args = parse_args(["--model", "op.onnx", "--backend", "onnxruntime", "--images", "d", *ann])
    assert args.backend == "onnxruntime"
    assert parse_args(["--oracle", "bottomup", *ann]).backend == "cpp"
    with pytest.raises(SystemExit):
        parse_args(["--oracle", "bottomup", "--backend", "onnxruntime", *ann])
    with pytest.raises(SystemExit):
        parse_args(
            ["--model", "openpose_mobilenet_thin", "--backend", "reference", "--images", "d", *ann]
        )
    assert "grouping choice of --oracle" in capsys.readouterr().err


@pytest.mark.slow
def test_topdown_predictor_onnx_matches_torch(tmp_path):
    """RSN-18 (random weights, 64x48 crops): the ONNX predictor's people equal the torch
    predictor's on real boxes of the sample photo."""
    from simplepose.export import load_for_export
    from simplepose.predictor import Predictor

    module, spec, _ = load_for_export("rsn18", TINY_KWARGS["rsn18"])
    out = tmp_path / "rsn18.onnx"
    export_onnx(module, spec, out, check=False)
    image = cv2.imread(str(SAMPLE_IMAGE))
    boxes = np.array([[10, 10, 120, 200], [150, 30, 100, 180], [60, 80, 90, 90]], float)
    onnx_pred = Predictor.from_onnx(out, detector=None, batch_size=2)
    torch_pred = Predictor.from_spec(spec, module, device="cpu", detector=None, batch_size=2)
    ref = torch_pred.forward(torch_pred.prepare(image, boxes))
    got = onnx_pred.forward(onnx_pred.prepare(image, boxes))
    assert _rel_diff([got], [ref]) <= ATOL
    a, b = torch_pred.predict(image, boxes), onnx_pred.predict(image, boxes)
    assert len(a) == len(b) == 3
    for p, q in zip(a, b):
        np.testing.assert_allclose(p.keypoints[:, :2], q.keypoints[:, :2], atol=1e-2)


def test_missing_exporter_packages_are_named(monkeypatch, capsys, tmp_path):
    import importlib.util

    from simplepose import export

    real = importlib.util.find_spec
    def find_spec(name, *args):
        return None if name == "onnxscript" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    code = export.main(["--model", "openpose_mobilenet_thin", "--output", str(tmp_path / "x.onnx")])
    err = capsys.readouterr().err
    assert code == 2
    assert "onnxscript" in err and "[export]" in err
    assert not (tmp_path / "x.onnx").exists()
