"""Top-down inference (simplepose.inference.topdown): crop geometry, flip, fake and tiny models."""

import numpy as np
import pytest
import torch

from simplepose.codecs.topdown import build_codec
from simplepose.data.topdown_transforms import (
    CPN_TEST_PADDING,
    MSPN_TEST_PADDING,
    box_to_center_scale,
    get_affine_transform,
)
from simplepose.errors import InputError
from simplepose.inference.topdown import (
    TopDownPipeline,
    crop_affines,
    default_padding,
    heatmaps_to_people,
)
from simplepose.spec import CPN_INPUT, MSPN_INPUT, TOPDOWN_TEST_PADDING, get_spec, select_heatmap

K = 17
CODEC = build_codec("mspn_256x192")
# A small input size keeps the real-network tests fast; every size divisible by 4 decodes.
TINY_CODEC = build_codec("rsn_256x192").with_options(
    name="rsn_128x96", input_hw=(128, 96), heatmap_hw=(32, 24)
)


def _blob_image(x, y, h=480, w=640, sigma=3.0):
    """(h, w, 3) uint8 image with one Gaussian blob centred at (x, y) original px."""
    yy, xx = np.mgrid[0:h, 0:w]
    g = 255.0 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2))
    return np.repeat(g[..., None], 3, axis=2).astype(np.uint8)


def _centroid(img):
    """Intensity centroid (x, y) of a blob image, pixel centres at integers."""
    w = img.astype(np.float64).mean(axis=-1)
    w = np.clip(w - 0.5 * w.max(), 0, None)
    yy, xx = np.mgrid[0:w.shape[0], 0:w.shape[1]]
    return np.array([(w * xx).sum() / w.sum(), (w * yy).sum() / w.sum()])


class BlobModel(torch.nn.Module):
    """"Fake network": finds the blob in each crop and outputs the codec's rendered target of
    that point for all 17 channels (what a perfect network trained on the codec would output)."""

    def __init__(self, codec):
        super().__init__()
        self.codec = codec

    def forward(self, x):
        maps = []
        for img in x.detach().cpu().numpy():
            c = _centroid(img.transpose(1, 2, 0) - img.min())
            t, _ = self.codec.encode(np.tile(c, (K, 1)), np.full(K, 2))
            maps.append(t[self.codec.refine_target])
        return torch.from_numpy(np.stack(maps))


def test_crop_affines_match_reference_transform():
    boxes = np.array([[10.0, 20.0, 100.0, 200.0], [300.0, 50.0, 300.0, 90.0]])
    mats, invs = crop_affines(boxes, CODEC, MSPN_TEST_PADDING)
    c, s = box_to_center_scale(boxes, 192 / 256, MSPN_TEST_PADDING)
    for i in range(2):
        np.testing.assert_allclose(mats[i], get_affine_transform(c[i], s[i], 0, (192, 256)))
        np.testing.assert_allclose(
            invs[i], get_affine_transform(c[i], s[i], 0, (192, 256), inv=True), atol=1e-9
        )
    # The box centre maps to the crop centre.
    centre = boxes[:, :2] + boxes[:, 2:] / 2
    np.testing.assert_allclose(np.einsum("nij,nj->ni", mats[:, :, :2], centre) + mats[:, :, 2],
                               [[96, 128]] * 2)  # fmt: skip
    assert crop_affines(np.zeros((0, 4)), CODEC)[0].shape == (0, 2, 3)


def test_padding_options_and_conventions():
    assert default_padding(CODEC) == TOPDOWN_TEST_PADDING == (1.25, 1.25)
    assert default_padding(CODEC, "reference") == MSPN_TEST_PADDING
    assert default_padding(build_codec("cpn_256x192"), "reference") == CPN_TEST_PADDING
    assert default_padding(CODEC, 1.1) == (1.1, 1.1)
    with pytest.raises(InputError):
        default_padding(CODEC, "wide")
    with pytest.raises(InputError):
        default_padding(CODEC, (0, 1))
    assert default_padding(CODEC, "reference", reference=(1.5, 1.4)) == (1.5, 1.4)
    p = TopDownPipeline(torch.nn.Identity(), build_codec("cpn_256x192"))
    assert p.channel_order == "rgb" and np.allclose(p.input_norm.std, 255)
    assert p.input_norm == CPN_INPUT == get_spec("cpn50").input
    p = TopDownPipeline(torch.nn.Identity(), build_codec("rsn_256x192"))
    assert p.channel_order == "bgr" and p.input_norm == MSPN_INPUT == get_spec("rsn18").input


def test_normalisation_matches_training_convention():
    img = np.zeros((1, 4, 4, 3), np.uint8)
    img[..., 0], img[..., 1], img[..., 2] = 10, 20, 30  # B, G, R
    p = TopDownPipeline(torch.nn.Identity(), build_codec("rsn_256x192"))
    x = p._to_tensor(img)[0, :, 0, 0].numpy()
    want = (np.array([10, 20, 30]) / 255 - [0.406, 0.456, 0.485]) / [0.225, 0.224, 0.229]
    np.testing.assert_allclose(x, want, rtol=1e-5)
    p = TopDownPipeline(torch.nn.Identity(), build_codec("cpn_256x192"))
    x = p._to_tensor(img)[0, :, 0, 0].numpy()
    want = (np.array([30, 20, 10]) - np.array([122.7717, 115.9465, 102.9801])) / 255
    np.testing.assert_allclose(x, want, rtol=1e-5)


@pytest.mark.parametrize("reference_flip", [False, True])
def test_flipped_crop_geometry(reference_flip):
    """The mirrored crop shows input px x at W_in - x (exact) or W_in - 1 - x (reference)."""
    img = _blob_image(251.3, 190.7)
    box = np.array([[200.0, 120.0, 120.0, 160.0]])
    p = TopDownPipeline(torch.nn.Identity(), CODEC, flip=True, reference_flip=reference_flip)
    mats, _ = crop_affines(box, CODEC, p.padding)
    crops, flipped = p.crop(img, mats)
    assert crops.shape == flipped.shape == (1, 256, 192, 3) and crops.dtype == np.uint8
    c, cf = _centroid(crops[0]), _centroid(flipped[0])
    want = np.einsum("ij,j->i", mats[0, :, :2], [251.3, 190.7]) + mats[0, :, 2]
    np.testing.assert_allclose(c, want, atol=0.05)
    mirror = 191.0 if reference_flip else 192.0
    np.testing.assert_allclose(cf, [mirror - c[0], c[1]], atol=0.05)


@pytest.mark.parametrize("flip", [False, True])
def test_fake_model_recovers_keypoints(flip):
    """Perfect rendered maps -> the crop / affine / decode chain recovers the point to within
    the codec's cell quantisation (2 input px per axis, here about 2.2 original px)."""
    rng = np.random.default_rng(0)
    pipeline = TopDownPipeline(BlobModel(CODEC), CODEC, flip=flip, batch_size=3)
    for _ in range(6):
        x, y = rng.uniform(200, 400), rng.uniform(150, 300)
        img = _blob_image(x, y)
        boxes = np.array([[x - rng.uniform(30, 110), y - rng.uniform(40, 150), 150, 210],
                          [x - 60, y - 80, 130, 170]])  # fmt: skip
        people = pipeline.predict(img, boxes, np.array([0.9, 0.5]))
        assert len(people) == 2
        for p, b, s in zip(people, boxes, (0.9, 0.5)):
            scale = 192 / max(b[2] * 1.25, b[3] * 1.25 * 0.75)  # input px per original px
            err = np.abs(p.keypoints[:, :2] - [x, y]).max()
            assert err <= 2.0 / scale + 0.3, err
            np.testing.assert_allclose(p.keypoints[:, 2], 1.5)  # perfect peak: 255/255 + 0.5
            assert p.score == pytest.approx(s * 1.5)
            np.testing.assert_allclose(p.box, [b[0], b[1], b[0] + b[2], b[1] + b[3]])


def test_heatmaps_to_people_contract():
    maps, _ = CODEC.encode(np.array([[96.0, 128.0]] * K), np.full(K, 2))
    inv = np.array([[[2.0, 0, 10], [0, 2.0, 20]]])
    people = heatmaps_to_people(CODEC, maps[CODEC.refine_target][None], inv, [[0, 0, 5, 5]], [0.5])
    (p,) = people
    assert p.keypoints.shape == (K, 3)
    np.testing.assert_allclose(p.keypoints[:, :2], [[2 * 98 + 10, 2 * 130 + 20]] * K)  # cell 24, 32
    assert heatmaps_to_people(CODEC, np.zeros((0, K, 64, 48)), np.zeros((0, 2, 3)),
                              np.zeros((0, 4)), np.zeros(0)) == []  # fmt: skip
    with pytest.raises(InputError):
        heatmaps_to_people(CODEC, maps[4][None], inv, [[0, 0, 5, 5]], [0.5, 0.2])


def test_predict_edge_cases_and_oks_nms():
    img = _blob_image(300, 200)
    pipeline = TopDownPipeline(BlobModel(CODEC), CODEC, flip=False)
    assert pipeline.predict(img, np.zeros((0, 4))) == []
    # a degenerate box is dropped (sanitize_boxes warns), not crashed on
    assert len(pipeline.predict(img, [[250, 150, 100, 120], [0, 0, 0, 10]], [1.0, 1.0])) == 1
    with pytest.raises(InputError):
        pipeline.predict(img[..., :2], [[250, 150, 100, 120]])
    # two near-identical boxes give the same pose; OKS-NMS keeps the better-scored one
    boxes = [[250, 150, 100, 120], [251, 150, 100, 120]]
    assert len(pipeline.predict(img, boxes, [0.9, 0.8])) == 2
    nms = TopDownPipeline(BlobModel(CODEC), CODEC, flip=False, use_oks_nms=True)
    kept = nms.predict(img, boxes, [0.8, 0.9])
    assert len(kept) == 1 and kept[0].box[0] == 251


def test_predictor_uses_the_detector_boxes():
    from simplepose.predictor import Predictor

    class FakeDetector:
        def detect(self, image):
            return np.array([[250.0, 150.0, 350.0, 270.0]], np.float32), np.array([0.7], np.float32)

    img = _blob_image(300, 200)
    pipeline = TopDownPipeline(BlobModel(CODEC), CODEC, flip=False)
    (p,) = Predictor(pipeline, get_spec("mspn"), detector=FakeDetector()).predict(img)
    np.testing.assert_allclose(p.box, [250, 150, 350, 270])
    assert p.score == pytest.approx(0.7 * 1.5)


def test_select_heatmap_adapters():
    t = torch.zeros(2, K, 64, 48)
    assert select_heatmap(t) is t
    assert select_heatmap(([t, t], t + 1)) is not t  # CPN: refine output
    assert select_heatmap((t, [[t]])) is t  # MSPN/RSN with stages
    with pytest.raises(InputError):
        select_heatmap("nope")


def test_tiny_rsn18_end_to_end(one_thread):
    """Random-weight RSN-18 with flip test: shapes, frames and batching (4 crops, batch 3)."""
    from simplepose.spec import build_model

    torch.manual_seed(0)
    model = build_model("rsn18", num_stages=1, input_size=(128, 96)).train()
    pipeline = TopDownPipeline.from_spec(model, get_spec("rsn18"), codec=TINY_CODEC, flip=True,
                                         batch_size=3)  # fmt: skip
    assert pipeline.codec is TINY_CODEC and not model.training
    rng = np.random.default_rng(1)
    img = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
    boxes = np.array([[20.0, 30.0, 80.0, 150.0], [0, 0, 320, 240]])
    people = pipeline.predict(img, boxes, np.array([0.9, 0.3]))
    assert len(people) == 2
    for p, b in zip(people, boxes):
        assert p.keypoints.shape == (K, 3) and np.isfinite(p.keypoints).all()
        # keypoints lie inside the crop window, in original px
        _, inv = crop_affines(b[None], pipeline.codec, pipeline.padding)
        corners = np.array([[0, 0], [96, 128]]) @ inv[0, :, :2].T + inv[0, :, 2]
        assert (p.keypoints[:, :2] >= corners[0] - 1e-6).all()
        assert (p.keypoints[:, :2] <= corners[1] + 1e-6).all()
        np.testing.assert_allclose(p.box, [b[0], b[1], b[0] + b[2], b[1] + b[3]])


def test_from_checkpoint(tmp_path, one_thread):
    from simplepose.checkpoint import save_model

    # The codec follows the spec's input size.
    big = TopDownPipeline.from_spec(
        torch.nn.Identity(), get_spec("mspn").with_kwargs(input_size=[384, 288])
    )
    assert big.codec.name == "mspn_384x288"
    spec = get_spec("rsn18").with_kwargs(num_stages=1, input_size=[128, 96])
    model = spec.build_model()
    path = save_model(tmp_path / "rsn18.safetensors", spec, model.state_dict())
    assert TopDownPipeline.from_checkpoint(path, flip=False).codec == spec.build_codec()
    pipeline = TopDownPipeline.from_checkpoint(path, flip=False, codec=TINY_CODEC)
    assert pipeline.codec is TINY_CODEC
    img = np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)
    (p,) = pipeline.predict(img, [[50, 20, 100, 160]], [1.0])
    assert p.keypoints.shape == (K, 3) and np.isfinite(p.keypoints).all()
    with pytest.raises(InputError):
        TopDownPipeline.from_spec(model, get_spec("imhn"))


@pytest.mark.slow
def test_cpn_and_mspn_run(one_thread):
    from simplepose.spec import build_model

    model = build_model("mspn", num_stages=1)
    pipeline = TopDownPipeline.from_spec(model, get_spec("mspn"), flip=True)
    img = np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)
    (p,) = pipeline.predict(img, [[50, 20, 100, 160]])
    assert pipeline.codec.name == "mspn_256x192" and np.isfinite(p.keypoints).all()


@pytest.mark.slow
def test_cpn_output_adapter_runs(one_thread):
    from simplepose.spec import build_model

    model = build_model("cpn50")
    pipeline = TopDownPipeline.from_spec(model, get_spec("cpn50"), flip=True)
    assert pipeline.codec.name == "cpn_256x192" and pipeline.channel_order == "rgb"
    img = np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)
    (p,) = pipeline.predict(img, [[50, 20, 100, 160]])
    assert p.keypoints.shape == (K, 3) and np.isfinite(p.keypoints).all()


def test_oks_nms_on_a_layout_without_benchmark_sigmas():
    """OKS-NMS over MPII-16 people uses the borrowed similarity sigmas (no COCO-17 shape error)."""
    from simplepose.inference.topdown import _oks_nms_people
    from simplepose.structures import Person

    rng = np.random.default_rng(0)
    base = np.column_stack([rng.uniform(100, 200, 16), rng.uniform(100, 300, 16), np.ones(16)])
    near = base.copy()
    near[:, :2] += 1.0  # the same person found twice
    far = base.copy()
    far[:, 0] += 400.0
    box = np.array([90.0, 90.0, 210.0, 310.0])
    shifted = box + [400, 0, 400, 0]
    people = [Person(base, 0.9, box), Person(near, 0.8, box), Person(far, 0.7, shifted)]
    kept = _oks_nms_people(people, thresh=0.9)
    assert [p.score for p in kept] == [0.9, 0.7]
