"""TopDownDataset: instances, shapes, target peaks, flip, visibility weights, determinism."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest
from conftest import VAL_IMAGES

from simplepose.codecs.topdown import build_codec
from simplepose.data.topdown_dataset import (
    IMAGENET_MEAN_BGR,
    IMAGENET_STD_BGR,
    TopDownDataset,
    TopDownSampleParams,
)
from simplepose.data.topdown_transforms import TopDownAugParams
from simplepose.geometry import apply_affine
from simplepose.skeleton import COCO_FLIP_INDEX


@pytest.fixture(scope="module")
def codec():
    return build_codec("mspn_256x192")


@pytest.fixture(scope="module")
def dataset(sample_ann, codec):
    if not VAL_IMAGES.exists():
        pytest.skip(f"shared val images not found at {VAL_IMAGES}")
    return TopDownDataset(sample_ann, VAL_IMAGES, codec)


def test_instances(sample_ann, codec):
    ds = TopDownDataset(sample_ann, "/nonexistent", codec)  # images are read lazily
    # non-crowd persons with keypoints: 2 + 3 + 4
    assert len(ds) == 9
    assert all(a["num_keypoints"] > 0 and not a["iscrowd"] for _, a in ds.instances)
    assert len(TopDownDataset(sample_ann, "/nonexistent", codec, image_ids=[252219])) == 3


def test_shapes_and_dtypes(dataset, codec):
    s = dataset[0]
    assert set(s) == {"image", "targets", "target_weight", "image_id", "ann_id", "matrix"}
    assert s["image"].shape == (3, 256, 192) and s["image"].dtype == np.float32
    assert s["targets"].shape == (5, 17, 64, 48) and s["targets"].dtype == np.float32
    assert s["target_weight"].shape == (17,) and s["target_weight"].dtype == np.float32
    assert s["matrix"].shape == (2, 3) and s["matrix"].dtype == np.float64
    assert (s["image_id"], s["ann_id"]) == (dataset.instances[0][0], dataset.instances[0][1]["id"])
    assert s["targets"].max() == pytest.approx(255.0)
    assert set(np.unique(s["target_weight"])) <= {0.0, 1.0, 2.0}


def test_normalisation_is_bgr_imagenet(sample_ann, codec):
    if not VAL_IMAGES.exists():
        pytest.skip("no shared images")
    plain = TopDownDataset(sample_ann, VAL_IMAGES, codec, augment=False, pixel_mean=(0, 0, 0),
                           pixel_std=(1, 1, 1))  # fmt: skip
    norm = TopDownDataset(sample_ann, VAL_IMAGES, codec, augment=False)
    raw, img = plain[2]["image"], norm[2]["image"]
    assert raw.min() >= 0 and raw.max() <= 1
    mean = np.asarray(IMAGENET_MEAN_BGR, np.float32)[:, None, None]
    std = np.asarray(IMAGENET_STD_BGR, np.float32)[:, None, None]
    np.testing.assert_allclose(img, (raw - mean) / std, atol=1e-5)


def test_target_peaks_at_floor_cells_of_transformed_keypoints(dataset, codec):
    checked = 0
    for epoch in (0, 1, 2):
        for i in range(len(dataset)):
            params = dataset.sample_params(i, epoch)
            s = dataset[(epoch, i)]
            kp, vis = dataset.keypoints(i)
            kp_in = apply_affine(kp, s["matrix"])
            if params.aug.flip:
                kp_in, vis = kp_in[list(COCO_FLIP_INDEX)], vis[list(COCO_FLIP_INDEX)]
            cells = codec.keypoint_cells(kp_in)
            for k in range(17):
                if s["target_weight"][k] > 0:
                    assert s["target_weight"][k] == vis[k]
                    for t in range(codec.num_kernels):
                        cy, cx = np.unravel_index(np.argmax(s["targets"][t, k]), (64, 48))
                        assert (cx, cy) == tuple(cells[k]), (i, k, t)
                        assert s["targets"][t, k, cy, cx] == pytest.approx(255.0)
                    checked += 1
                else:
                    assert s["targets"][:, k].max() == 0.0
    assert checked > 100


def test_invisible_keypoints_have_zero_weight(dataset):
    found = 0
    for i in range(len(dataset)):
        _, vis = dataset.keypoints(i)
        s = dataset[i]
        w = s["target_weight"]
        flip = dataset.sample_params(i).aug.flip
        v = vis[list(COCO_FLIP_INDEX)] if flip else vis
        assert np.all(w[v == 0] == 0)
        assert np.all(s["targets"][:, v == 0] == 0)
        assert np.all((w == 0) | (w == v))  # labelled ones keep their flag (or leave the crop)
        found += int((v == 0).sum())
    assert found > 0


def test_flip_consistency(dataset, codec):
    for i in (0, 4, 7):
        base = dataset.sample_params(i)
        plain = TopDownSampleParams(base.center, base.scale, TopDownAugParams(0.9, 0.0, False))
        flipped = TopDownSampleParams(base.center, base.scale, TopDownAugParams(0.9, 0.0, True))
        a, b = dataset.get(i, plain), dataset.get(i, flipped)
        fi = list(COCO_FLIP_INDEX)
        # the flipped crop maps x to W_in - x (MSPN's convention), i.e. the mirrored cell
        np.testing.assert_array_equal(b["target_weight"], a["target_weight"][fi])
        np.testing.assert_allclose(b["targets"], a["targets"][:, fi][..., ::-1], atol=1e-3)
        mirrored = a["image"][:, :, ::-1]
        assert np.abs(b["image"][:, :, 1:] - mirrored[:, :, :-1]).mean() < 0.02


def test_determinism_and_epochs(sample_ann, dataset, codec):
    fresh = TopDownDataset(sample_ann, VAL_IMAGES, codec)
    for i in (0, 8):
        a, b = dataset[i], fresh[i]
        for key in ("image", "targets", "target_weight", "matrix"):
            np.testing.assert_array_equal(a[key], b[key])
    fresh.set_epoch(3)
    assert not np.array_equal(fresh[0]["matrix"], dataset[0]["matrix"])
    np.testing.assert_array_equal(fresh[(0, 0)]["image"], dataset[0]["image"])
    # no augmentation: deterministic crop of the padded box, independent of the epoch
    still = TopDownDataset(sample_ann, VAL_IMAGES, codec, augment=False)
    m0 = still[1]["matrix"]
    still.set_epoch(5)
    np.testing.assert_array_equal(still[1]["matrix"], m0)


def test_half_body_and_rotation_are_drawn(dataset):
    params = [dataset.sample_params(i, e) for e in range(60) for i in range(len(dataset))]
    assert 0.1 < np.mean([p.half_body for p in params]) < 0.4
    assert 0.35 < np.mean([p.aug.rotation != 0 for p in params]) < 0.65
    assert 0.35 < np.mean([p.aug.flip for p in params]) < 0.65


def test_missing_image_is_skipped_and_counted(sample_ann, codec, tmp_path, caplog):
    if not VAL_IMAGES.exists():
        pytest.skip("no shared images")
    shutil.copy(VAL_IMAGES / "000000252219.jpg", tmp_path / "000000252219.jpg")
    ds = TopDownDataset(sample_ann, tmp_path, codec)
    with caplog.at_level(logging.WARNING):
        ids = {ds[i]["image_id"] for i in range(len(ds))}
    assert ids == {252219}
    assert ds.num_bad_images == 2
    assert "000000040083.jpg" in caplog.text
