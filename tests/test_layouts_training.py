"""Layouts other than COCO-17 through codecs, datasets, loss and checkpoints (fast)."""

from pathlib import Path

import numpy as np
import pytest
import torch

from simplepose.codecs.bottomup import SimplePoseCodec, coco_to_internal
from simplepose.codecs.topdown import build_codec, layout_codec
from simplepose.config import load_config
from simplepose.data.bottomup_dataset import BottomUpDataset
from simplepose.data.datasets import load_annotations
from simplepose.data.topdown_dataset import TopDownDataset
from simplepose.engine.builders import build_loss, build_spec
from simplepose.errors import InputError
from simplepose.skeleton import CROWDPOSE14, MPII16, bottomup_layout
from simplepose.spec import get_spec

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"


def test_layout_codec():
    mpii = layout_codec("mpii16")
    assert mpii.name == "mspn_256x256" and mpii.decode_kernel == 9 and mpii.flip_index == MPII16.flip_index
    rsn = layout_codec(MPII16, "rsn_128x128")
    assert rsn.num_keypoints == 16 and rsn.decode_kernel == 9
    crowd = layout_codec("crowdpose14")
    assert crowd.name == "mspn_256x192" and crowd.flip_index == CROWDPOSE14.flip_index
    assert layout_codec("coco17", "cpn_256x192") == build_codec("cpn_256x192")


def test_config_layout_reaches_the_spec_codec_and_loss():
    cfg = load_config(REPO / "configs" / "rsn50_4x_256x256_mpii.yaml")
    spec = build_spec(cfg)
    assert spec.keypoints == "mpii16" and spec.kwargs["num_keypoints"] == 16
    codec = spec.build_codec()
    assert codec.flip_index == MPII16.flip_index and codec.decode_kernel == 9 and codec.input_hw == (256, 256)
    cfg = load_config(REPO / "configs" / "imhn_512_crowdpose.yaml")
    spec = build_spec(cfg)
    assert spec.keypoints == "crowdpose14" and spec.kwargs["out_dim"] == 36
    assert spec.build_codec().layout.name == "simplepose_crowdpose14"
    loss = build_loss(cfg, torch.nn.Identity(), spec)
    assert loss.keypoint_channels == (20, 34) and loss.person_mask_channel == 34
    cfg = load_config(REPO / "configs" / "rsn18_memorize.yaml", opts=["data.layout=h36m"])
    with pytest.raises(InputError, match="data.layout: unknown keypoint layout 'h36m'"):
        build_spec(cfg)
    cfg = load_config(REPO / "configs" / "rsn18_mpii_memorize.yaml", opts=["model.kwargs={num_keypoints: 17}"])
    with pytest.raises(InputError, match="num_keypoints=17 in the model kwargs, but the mpii16 layout needs 16"):
        build_spec(cfg)
    with pytest.raises(InputError, match="openpose_paf codec has COCO's layout only"):
        get_spec("openpose_mobilenet_thin").with_layout("crowdpose14")


def test_topdown_dataset_on_mpii_sample():
    ann = load_annotations(DATA / "mpii" / "test_mpii.json")
    codec = layout_codec("mpii16", "rsn_128x128")
    ds = TopDownDataset(ann, DATA / "mpii", codec, augment=False, image_ids=[2])  # 052475643.jpg
    sample = ds[0]
    assert sample["targets"].shape[1] == 16 and sample["target_weight"].shape[0] == 16
    with pytest.raises(InputError, match="mpii16 layout .* flips 17 keypoints"):
        TopDownDataset(ann, DATA / "mpii", build_codec("rsn_128x128"), augment=False)


def test_bottomup_dataset_and_codec_on_crowdpose_sample():
    ann = load_annotations(DATA / "crowdpose" / "test_crowdpose.json")
    codec = SimplePoseCodec(layout=bottomup_layout("crowdpose14"))
    ds = BottomUpDataset(ann, DATA / "crowdpose", input_size=128, augment=False, image_ids=[106848],
                         crop="image", codec=codec)  # fmt: skip
    sample = ds[0]
    assert sample["targets"].shape[0] == 36
    joints = coco_to_internal(ann.keypoints_array(106848), codec.layout)
    assert joints.shape == (3, 14, 3)  # the neck is a real CrowdPose keypoint: nothing synthetic
    with pytest.raises(InputError, match="crowdpose14 layout .* takes 17"):
        BottomUpDataset(ann, DATA / "crowdpose", input_size=128, augment=False)


def test_predictor_builds_the_layouts_pipelines(tmp_path):
    from simplepose.checkpoint import save_model
    from simplepose.predictor import Predictor

    spec = get_spec("rsn18").with_input_hw((64, 64)).with_kwargs(num_stages=1).with_layout("mpii16")
    path = save_model(tmp_path / "rsn.safetensors", spec, spec.build_model().state_dict())
    pred = Predictor.from_checkpoint(path, device="cpu", detector=None, flip=True)
    assert pred.pipeline.codec.flip_index == MPII16.flip_index and pred.pipeline.codec.decode_kernel == 9
    people = pred.predict(np.zeros((100, 80, 3), np.uint8), np.array([[10, 10, 50, 60]], float))
    assert people[0].keypoints.shape == (16, 3)
    spec = get_spec("imhn").with_kwargs(num_stacks=1, inp_dim=32, increase=16).with_layout("crowdpose14")
    path = save_model(tmp_path / "imhn.safetensors", spec, spec.build_model().state_dict())
    pred = Predictor.from_checkpoint(path, device="cpu", box_size=64, flip=True)
    assert pred.spec.build_codec().num_channels == 36
    assert all(p.keypoints.shape == (14, 3) for p in pred.predict(np.zeros((64, 96, 3), np.uint8)))
