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
from simplepose.engine.builders import build_codec as build_config_codec
from simplepose.engine.builders import build_loss
from simplepose.errors import InputError
from simplepose.predictor import checkpoint_layout
from simplepose.skeleton import CROWDPOSE14, MPII16, bottomup_layout

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


def test_config_layout_reaches_codec_and_loss():
    cfg = load_config(REPO / "configs" / "rsn50_4x_256x256_mpii.yaml")
    assert cfg.data.layout == "mpii16" and build_config_codec(cfg).flip_index == MPII16.flip_index
    cfg = load_config(REPO / "configs" / "imhn_512_crowdpose.yaml")
    loss = build_loss(cfg, torch.nn.Identity())
    assert loss.keypoint_channels == (20, 34) and loss.person_mask_channel == 34
    cfg = load_config(REPO / "configs" / "rsn18_memorize.yaml", opts=["data.layout=h36m"])
    with pytest.raises(InputError, match="data.layout: unknown keypoint layout 'h36m'"):
        build_config_codec(cfg)


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


def test_checkpoint_layout_from_the_training_config():
    assert checkpoint_layout({"config": '{"data": {"layout": "mpii16"}}'}) == "mpii16"
    assert checkpoint_layout({}) == "coco17" and checkpoint_layout({"config": "not json"}) == "coco17"


def test_predictor_builds_the_layouts_pipelines(tmp_path):
    from simplepose.checkpoint import save_model
    from simplepose.models import build_model
    from simplepose.predictor import Predictor

    kwargs = {"num_stages": 1, "num_keypoints": 16, "input_size": [64, 64]}
    model = build_model("rsn18", **kwargs)
    path = save_model(tmp_path / "rsn.safetensors", "rsn18", kwargs, model.state_dict(),
                      extra_meta={"config": {"data": {"layout": "mpii16"}}})  # fmt: skip
    pred = Predictor.from_checkpoint(path, device="cpu", detector=None, flip=True)
    assert pred.pipeline.codec.flip_index == MPII16.flip_index and pred.pipeline.codec.decode_kernel == 9
    image = np.zeros((100, 80, 3), np.uint8)
    people = pred.predict(image, np.array([[10, 10, 50, 60]], float))
    assert people[0].keypoints.shape == (16, 3)
    kwargs = {"num_stacks": 1, "inp_dim": 32, "increase": 16, "out_dim": 36}
    model = build_model("imhn", **kwargs)
    path = save_model(tmp_path / "imhn.safetensors", "imhn", kwargs, model.state_dict(),
                      extra_meta={"config": {"data": {"layout": "crowdpose14"}}})  # fmt: skip
    pred = Predictor.from_checkpoint(path, device="cpu", box_size=64, flip=True)
    assert pred.pipeline.spec.codec.num_channels == 36
    assert all(p.keypoints.shape == (14, 3) for p in pred.predict(np.zeros((64, 96, 3), np.uint8)))
