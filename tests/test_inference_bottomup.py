"""Bottom-up inference: flip permutations, multi-scale fusion grid, Predictor."""

import numpy as np
import pytest
from synthetic import PERSON

from simplepose.codecs.bottomup import OpenPosePafCodec, SimplePoseCodec, coco_to_internal
from simplepose.geometry import BottomUpGeometry
from simplepose.inference.bottomup import BottomUpPipeline, flip_channel_index


@pytest.mark.parametrize(
    "codec", [SimplePoseCodec(), OpenPosePafCodec(stride=4)], ids=["simplepose", "openpose"]
)
def test_flip_permutation_maps_mirrored_targets_onto_targets(codec):
    """Targets of the mirrored person (L/R labels swapped), mirrored back and permuted, equal
    the targets of the person: exactly what the flip test relies on."""
    h, w = 72, 60
    joints = coco_to_internal(PERSON[None])
    mirrored = joints.copy()
    mirrored[..., 0] = (4 * w - 1) - joints[..., 0]  # input px mirror of the padded width
    mirrored = mirrored[:, list(codec.layout.keypoint_flip)]  # a left part becomes a right part
    maps = codec.encode(joints, (h, w))
    maps_m = codec.encode(mirrored, (h, w))
    perm, sign = flip_channel_index(codec)
    back = maps_m[:, :, ::-1][perm] * sign[:, None, None]
    np.testing.assert_allclose(back, maps, atol=1e-5)
    assert (perm[perm] == np.arange(len(perm))).all()


class MapsModel:
    """A stand-in network: returns fixed maps for any input (records the input shape)."""

    def __init__(self, maps):
        import torch

        self.maps = torch.from_numpy(maps[None])
        self.shapes = []

    def __call__(self, x):
        self.shapes.append(tuple(x.shape))
        return self.maps.expand(x.shape[0], -1, -1, -1)

    def eval(self):
        return self

    def to(self, device):
        return self


def test_multiscale_maps_are_resampled_onto_the_base_grid():
    from simplepose.spec import available_specs, get_spec

    codec = SimplePoseCodec()
    width, height = 320, 400
    people = [PERSON + [40, 60, 0], PERSON + [160, 90, 0]]
    half = BottomUpGeometry.for_image(width, height, 512, 0.5, 4, 64)
    joints = coco_to_internal(np.stack(people))
    joints[..., :2] = half.original_to_input(joints[..., :2])
    model = MapsModel(codec.encode(joints, half.heatmap_hw))
    spec = get_spec("imhn").replace(output_adapter="identity")
    pipe = BottomUpPipeline(model, spec, scales=(0.5,))
    image = np.zeros((height, width, 3), np.uint8)
    fused, base = pipe.maps(image)
    assert base == BottomUpGeometry.for_image(width, height, 512, 1.0, 4, 64)
    assert fused.shape[1:] == base.heatmap_hw and model.shapes[0][2:] == (half.pad_h, half.pad_w)
    decoded = codec.decode(fused, base)
    assert len(decoded) == 2
    for truth in people:
        errors = [np.abs(p.keypoints[:, :2] - truth[:, :2]).max() for p in decoded]
        assert min(errors) < 1.5  # original px, after a 2x bilinear resampling of the maps
    assert "imhn" in available_specs()


def test_pipeline_rejects_bad_images():
    from simplepose.errors import InputError
    from simplepose.spec import get_spec

    spec = get_spec("imhn").replace(output_adapter="identity")
    pipe = BottomUpPipeline(MapsModel(np.zeros((50, 2, 2), np.float32)), spec)
    for bad in (np.zeros((0, 5, 3), np.uint8), np.zeros((5, 5, 2), np.uint8),
                np.zeros((5, 5, 3), np.float32), None):
        with pytest.raises(InputError, match="image 0"):
            pipe.predict(bad)
    with pytest.raises(InputError, match="scales"):
        BottomUpPipeline(MapsModel(np.zeros((50, 2, 2), np.float32)), spec, scales=(0.0,))


def test_predictor_with_tiny_imhn_checkpoint(tiny_imhn_checkpoint):
    from simplepose import Predictor

    predictor = Predictor.from_checkpoint(
        tiny_imhn_checkpoint, device="cpu", box_size=128, flip=True, scales=(1.0, 0.5)
    )
    assert predictor.mode == "bottomup" and predictor.model_name == "imhn"
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (90, 120, 3), dtype=np.uint8) for _ in range(2)]
    out = predictor.predict_batch(images + [rng.integers(0, 255, (100, 70, 3), dtype=np.uint8)])
    assert len(out) == 3 and all(isinstance(p, list) for p in out)


def test_predictor_from_pretrained_finds_people():
    import cv2
    from conftest import SHARED

    from simplepose import Predictor

    path = SHARED / "data" / "demo" / "rtmlib_demo.jpg"
    if not path.exists():
        pytest.skip(f"{path} not found")
    people = Predictor.from_pretrained(device="cpu").predict(cv2.imread(str(path)))
    assert len(people) >= 3
    best = max(people, key=lambda p: p.score)
    assert best.num_keypoints >= 10 and best.keypoints.shape == (17, 3)
