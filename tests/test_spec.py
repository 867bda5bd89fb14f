"""simplepose.spec: the one registry of model specs, their serialisation, and adding a model
variant with one spec entry (train -> checkpoint -> evaluate -> demo)."""

from __future__ import annotations

import importlib.util
import json
import re

import pytest
from conftest import REPO, SAMPLE_ANN, VAL_IMAGES

from simplepose.errors import InputError
from simplepose.spec import (
    InputNorm,
    PoseModelSpec,
    available_specs,
    codec_from_dict,
    codec_to_dict,
    get_spec,
    register_spec,
    unregister_spec,
)

BUILTIN = ("cpn101", "cpn50", "imhn", "mspn", "openpose_mobilenet_thin", "rsn18", "rsn50")


def test_registry_lists_the_builtin_models_and_refuses_unknown_names():
    assert tuple(available_specs()) == BUILTIN
    with pytest.raises(
        InputError, match=r"unknown model 'rsn34'; known: cpn101, cpn50, imhn, mspn"
    ):
        get_spec("rsn34")
    with pytest.raises(InputError, match="already registered"):
        register_spec(get_spec("imhn"))


@pytest.mark.parametrize("name", BUILTIN)
def test_specs_round_trip_and_rebuild_their_codec(name):
    spec = get_spec(name)
    again = PoseModelSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec and again.to_dict() == spec.to_dict()
    codec = spec.build_codec()
    assert codec_from_dict(codec_to_dict(codec)) == codec
    assert spec.keypoints == "coco17"
    if spec.paradigm == "topdown":
        from simplepose.codecs.topdown import build_codec

        assert codec == build_codec(f"{spec.codec_family}_256x192") and spec.input_hw == (256, 192)
        assert spec.output_adapter == "topdown_heatmap"
    else:
        assert spec.input_hw is None and spec.inference["pad_multiple"] in (8, 64)


def test_input_size_variants_follow_the_codec_family():
    spec = get_spec("cpn50").with_kwargs(input_size=[384, 288])
    assert spec.codec["name"] == "cpn_384x288" and spec.build_codec().kernels == (23, 17, 13, 9)
    assert spec.kwargs["input_size"] == [384, 288]
    small = get_spec("rsn18").with_input_hw((128, 96))
    assert small.build_codec().heatmap_hw == (32, 24) and small.kwargs["input_size"] == [128, 96]
    with pytest.raises(InputError, match="disagree"):
        get_spec("rsn18").replace(kwargs={"input_size": [128, 96]})
    with pytest.raises(InputError, match="bottom-up"):
        get_spec("imhn").with_input_hw((256, 192))


@pytest.mark.parametrize(
    "changes, needle",
    [
        ({"paradigm": "sideways"}, "paradigm must be one of"),
        ({"output_adapter": "nope"}, "unknown output adapter 'nope'"),
        ({"loss": "l1"}, "loss must be one of"),
        ({"builder": "no_colon"}, "module:function"),
        ({"paradigm": "topdown"}, "a topdown model needs a codec of type topdown_heatmap"),
        ({"kwargs": {"x": object()}}, "not JSON-serialisable"),
    ],
)
def test_invalid_specs_are_refused(changes, needle):
    with pytest.raises(InputError, match=needle):
        get_spec("imhn").replace(**changes)


def test_bad_serialised_specs_are_refused():
    data = get_spec("imhn").to_dict()
    with pytest.raises(InputError, match="unknown fields \\['colour'\\]"):
        PoseModelSpec.from_dict({**data, "colour": 1})
    with pytest.raises(InputError, match="missing fields \\['codec'\\]"):
        PoseModelSpec.from_dict({k: v for k, v in data.items() if k != "codec"})
    with pytest.raises(InputError, match="unknown codec type"):
        codec_from_dict({"type": "wavelet"})
    with pytest.raises(InputError, match="unknown field"):
        codec_from_dict({**data["codec"], "sigma_typo": 1})
    with pytest.raises(InputError, match="std must be positive"):
        InputNorm(std=(1, 0, 1))
    with pytest.raises(InputError, match="cannot import builder"):
        get_spec("imhn").replace(builder="simplepose.models.imhn:nope").build_model()


def test_no_model_name_tables_outside_the_registry():
    """A table entry is a quoted registered name followed by ':' or ','; only spec.py has them
    (issue 9: one registry of model specs)."""
    names = "|".join(map(re.escape, BUILTIN))
    entry = re.compile(r"""["'](""" + names + r""")["']\s*[:,]""")
    offenders = {}
    for path in sorted((REPO / "simplepose").rglob("*.py")):
        if path.name == "spec.py":
            continue
        names = set(entry.findall(path.read_text()))
        if len(names) >= 2:
            offenders[str(path.relative_to(REPO))] = sorted(names)
    assert not offenders


# ------------------------------------------------------------- one spec entry, end to end
def _script(name):
    spec = importlib.util.spec_from_file_location(f"{name}_script", REPO / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def tiny_variant():
    """A model variant that exists only in this test: one spec entry."""
    spec = (
        get_spec("rsn18")
        .replace(name="rsn18_tiny_test")
        .with_kwargs(num_stages=1, input_size=[64, 48])
    )
    register_spec(spec)
    yield spec
    unregister_spec(spec.name)


@pytest.mark.slow  # ~10 s: trains 2 iterations, evaluates 3 images, runs the detector once
@pytest.mark.skipif(not VAL_IMAGES.exists(), reason=f"val images not found at {VAL_IMAGES}")
def test_a_registered_variant_trains_checkpoints_evaluates_and_demos(tmp_path, tiny_variant):
    import torch

    from simplepose.checkpoint import read_metadata
    from simplepose.config import config_from_dict
    from simplepose.engine.loop import Trainer
    from simplepose.engine.state import load_training_checkpoint

    torch.set_num_threads(1)
    cfg = config_from_dict(
        {
            "model": {"name": tiny_variant.name},
            "data": {
                "task": "topdown",
                "train_ann": str(SAMPLE_ANN),
                "train_images": str(VAL_IMAGES),
                "input_hw": [64, 48],
                "batch_size": 2,
                "workers": 0,
                "augment": False,
            },
            "optim": {"name": "adam", "lr": 1e-3, "schedule": "constant", "max_iters": 2},
            "train": {
                "output_dir": str(tmp_path / "run"),
                "progress": False,
                "device": "cpu",
                "skip_loss_above": None,
            },
        }
    )
    trainer = Trainer(cfg)
    assert trainer.spec == tiny_variant
    final = trainer.fit()
    assert load_training_checkpoint(tmp_path / "run" / "last.pt")["spec"] == tiny_variant.to_dict()
    unregister_spec(tiny_variant.name)  # from here on the checkpoint alone describes the model
    assert read_metadata(final)["spec"] == tiny_variant

    metrics = tmp_path / "m.json"
    assert (
        _script("evaluate").main(
            [
                "--checkpoint",
                str(final),
                "--gt-boxes",
                "--ann",
                str(SAMPLE_ANN),
                "--images",
                str(VAL_IMAGES),
                "--metrics",
                str(metrics),
                "--quiet",
            ]
        )
        == 0
    )
    record = json.loads(metrics.read_text())
    assert record["model"] == tiny_variant.name and record["num_images"] == 3

    people_json = tmp_path / "people.json"
    image = VAL_IMAGES / "000000040083.jpg"
    assert (
        _script("demo").main(
            [
                "--input",
                str(image),
                "--checkpoint",
                str(final),
                "--mode",
                "topdown",
                "--output",
                str(tmp_path / "drawn.jpg"),
                "--json",
                str(people_json),
                "--quiet",
            ]
        )
        == 0
    )
    (frame,) = json.loads(people_json.read_text())
    assert frame["image"] == image.name and len(frame["people"]) >= 1
    assert (tmp_path / "drawn.jpg").stat().st_size > 0


def test_a_keypoint_layout_is_a_spec_field():
    """An MPII-16 variant of a top-down model: layout name, codec flip permutation and the
    builder's keypoint count, nothing else."""
    from simplepose.skeleton import get_layout

    rsn = get_spec("rsn18")
    with pytest.raises(InputError, match="17 entries for the 16 keypoints of mpii16"):
        rsn.replace(keypoints="mpii16")
    mpii = get_layout("mpii16")
    spec = rsn.replace(
        name="rsn18_mpii",
        keypoints="mpii16",
        codec={**rsn.codec, "flip_index": list(mpii.flip_index)},
    ).with_kwargs(num_keypoints=16)
    assert spec.layout is mpii and spec.build_codec().num_keypoints == 16
    assert PoseModelSpec.from_json(spec.to_json()) == spec
    with pytest.raises(InputError, match="unknown keypoint layout"):
        rsn.replace(keypoints="coco18")


@pytest.mark.parametrize("name", ["cpn50", "rsn18"])
def test_training_samples_use_the_spec_normalisation(name):
    """The top-down training crops are normalised as the spec says inference normalises them
    (CPN: RGB minus the pixel mean; MSPN/RSN: BGR ImageNet statistics)."""
    import numpy as np

    from simplepose.config import config_from_dict
    from simplepose.engine.builders import build_train_dataset

    cfg = config_from_dict(
        {
            "model": {"name": name},
            "data": {
                "task": "topdown",
                "train_ann": str(SAMPLE_ANN),
                "train_images": str(VAL_IMAGES),
            },
        }
    )
    dataset = build_train_dataset(cfg)
    norm = get_spec(name).input
    assert dataset.to_rgb == (norm.channel_order == "rgb")
    # dataset: x * a + b with x in 0..255; spec: (x - mean) / std
    x = np.array([0.0, 128.0, 255.0])
    for c in range(3):
        want = (x - norm.mean[c]) / norm.std[c]
        got = x * dataset._norm_a[c, 0, 0] + dataset._norm_b[c, 0, 0]
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
