"""BottomUpDataset: main-person selection, sample contents, determinism, flip, bad images.

The committed sample annotations (tests/data/coco_sample) describe three val2017 images; the
images themselves live in ../shared/data/coco/val2017 (tests needing them skip without it).
"""

from __future__ import annotations

import logging
import math
import shutil
from dataclasses import replace

import numpy as np
import pytest
from conftest import VAL_IMAGES

from simplepose.codecs.bottomup import SimplePoseCodec
from simplepose.data.bottomup_dataset import (
    BottomUpAugDraw,
    BottomUpDataset,
    bottomup_affine,
    select_main_persons,
)
from simplepose.skeleton import SIMPLEPOSE18

SIZE = 256  # smaller than the 512 default: faster, same code paths


def _need_images():
    if not VAL_IMAGES.exists():
        pytest.skip(f"shared val images not found at {VAL_IMAGES}")


@pytest.fixture(scope="module")
def dataset(sample_ann):
    _need_images()
    return BottomUpDataset(sample_ann, VAL_IMAGES, input_size=SIZE)


# ----------------------------------------------------------------------------- selection
def test_main_person_selection_on_sample(sample_ann):
    got = {
        image_id: [a["id"] for a in select_main_persons(sample_ann.annotations_by_image[image_id])]
        for image_id in sample_ann.image_ids
    }
    # 463730: 225736 (centre 21 px from 208323's, own max(w, h) = 127.75 -> radius 38) is
    # skipped; the persons without keypoints and the crowd region never qualify.
    assert got == {
        40083: [198196, 230195],
        252219: [481918, 489768, 495624],
        463730: [208323, 226563, 233668],
    }


def _ann(i, x, y, w, h, nk=10, area=None, crowd=0):
    return {"id": i, "bbox": [x, y, w, h], "num_keypoints": nk,
            "area": w * h if area is None else area, "iscrowd": crowd}  # fmt: skip


def test_selection_uses_the_candidates_own_box():
    small = _ann(1, 0, 0, 40, 40)  # centre (20, 20), 0.3 * 40 = 12
    big = _ann(2, 0, 30 - 80, 40, 200)  # centre (20, 50): 30 px away, own radius 60 -> skip
    assert [a["id"] for a in select_main_persons([small, big])] == [1]
    # The other way round: big first, then the small one 30 px away with radius 12 -> kept.
    assert [a["id"] for a in select_main_persons([big, small])] == [2, 1]


def test_selection_thresholds():
    anns = [
        _ann(1, 0, 0, 100, 100, nk=4),  # too few keypoints
        _ann(2, 200, 0, 100, 100, area=32 * 32 - 1),  # too small
        _ann(3, 400, 0, 100, 100, crowd=1),  # crowd
        _ann(4, 600, 0, 100, 100, nk=5, area=32 * 32),  # exactly at both limits
    ]
    assert [a["id"] for a in select_main_persons(anns)] == [4]


# ----------------------------------------------------------------------------- samples
def test_shapes_dtypes_ranges(dataset):
    assert len(dataset) == 8
    o = SIZE // 4
    for i in range(len(dataset)):
        s = dataset[i]
        assert set(s) == {"image", "targets", "mask_miss", "image_id", "matrix"}
        assert s["image"].shape == (3, SIZE, SIZE) and s["image"].dtype == np.float32
        assert s["targets"].shape == (50, o, o) and s["targets"].dtype == np.float32
        assert s["mask_miss"].shape == (1, o, o) and s["mask_miss"].dtype == np.float32
        assert s["matrix"].shape == (2, 3) and s["matrix"].dtype == np.float64
        assert isinstance(s["image_id"], int) and s["image_id"] == dataset.samples[i][0]
        for key in ("image", "targets", "mask_miss"):
            assert 0.0 <= s[key].min() and s[key].max() <= 1.0, key
        assert s["targets"][30:48].max() > 0.9  # the main person is rendered
        np.testing.assert_array_equal(s["targets"][49], s["targets"][30:48].max(axis=0))


def test_default_512_sample_and_masks(sample_ann):
    _need_images()
    ds = BottomUpDataset(sample_ann, VAL_IMAGES, augment=False)
    by_image = {}
    for i in range(len(ds)):
        s = ds[i]
        assert s["image"].shape == (3, 512, 512) and s["targets"].shape == (50, 128, 128)
        by_image.setdefault(s["image_id"], []).append(s)
    # 252219: every person is labelled -> nothing ignored; 463730 has unlabelled persons
    # and a crowd region -> some cells are masked out.
    assert all(s["mask_miss"].min() == 1.0 for s in by_image[252219])
    assert all(s["mask_miss"].min() < 0.5 for s in by_image[463730])
    # channel 48 (person mask) is on where the main person stands (input centre)
    assert all(s["targets"][48, 60:68, 60:68].max() > 0.5 for s in by_image[252219])


def test_no_augmentation_centres_and_scales_the_main_person(sample_ann):
    _need_images()
    ds = BottomUpDataset(sample_ann, VAL_IMAGES, input_size=SIZE, augment=False)
    for i in range(len(ds)):
        _, ann = ds.samples[i]
        m = ds[i]["matrix"]
        x, y, w, h = ann["bbox"]
        centre = m[:, :2] @ [x + w / 2, y + h / 2] + m[:, 2]
        np.testing.assert_allclose(centre, [(SIZE - 1) / 2] * 2, atol=1e-9)
        np.testing.assert_allclose(m[:, :2], np.eye(2) * 0.6 * (SIZE - 1) / h, atol=1e-12)


def test_determinism_and_epochs(sample_ann, dataset):
    fresh = BottomUpDataset(sample_ann, VAL_IMAGES, input_size=SIZE)  # empty caches
    for i in (0, 5):
        a, b = dataset[i], fresh[i]
        for key in ("image", "targets", "mask_miss", "matrix"):
            np.testing.assert_array_equal(a[key], b[key])
    fresh.set_epoch(1)
    c = fresh[0]
    assert not np.array_equal(c["matrix"], dataset[0]["matrix"])
    np.testing.assert_array_equal(fresh[(0, 0)]["targets"], dataset[0]["targets"])
    np.testing.assert_array_equal(dataset[(1, 0)]["targets"], c["targets"])
    other_seed = BottomUpDataset(sample_ann, VAL_IMAGES, input_size=SIZE, seed=1)
    assert not np.array_equal(other_seed[0]["matrix"], dataset[0]["matrix"])


def test_epoch_draws_cover_the_spec_ranges(dataset):
    draws = [dataset.sample_aug(3, e) for e in range(400)]
    rot = np.array([d.rotation for d in draws])
    assert rot.min() >= -40 and rot.max() <= 40 and rot.std() > 15
    assert 0.35 < np.mean([d.flip for d in draws]) < 0.65
    assert 0.1 < np.mean([d.tint is not None for d in draws]) < 0.3
    scales = np.array([d.scale for d in draws])
    assert 0.1 < np.mean(scales == 1.0) < 0.3 and scales.min() >= 0.7 and scales.max() <= 1.3
    shifts = np.array([d.shift for d in draws])
    assert np.all(np.abs(shifts) <= 50) and np.all(shifts == np.round(shifts))


# ----------------------------------------------------------------------------- geometry
def test_flip_swaps_left_and_right(dataset):
    plain = BottomUpAugDraw(flip=False, rotation=17.0, scale=1.15, shift=(7.0, -4.0))
    # The mirror is applied before the shift, so the mirrored sample has dx negated.
    mirrored = replace(plain, flip=True, shift=(-7.0, -4.0))
    kflip = list(SIMPLEPOSE18.keypoint_flip)
    lflip = list(SIMPLEPOSE18.limb_flip)
    for i in (0, 3, 6):
        a = dataset.get(i, plain)
        b = dataset.get(i, mirrored)
        ta, tb = a["targets"], b["targets"]
        assert ta[30:48].max() > 0.5
        np.testing.assert_allclose(tb[30:48], ta[30:48][kflip][:, :, ::-1], atol=1e-5)
        np.testing.assert_allclose(tb[:30], ta[:30][lflip][:, :, ::-1], atol=1e-5)
        np.testing.assert_allclose(tb[49], ta[49][:, ::-1], atol=1e-5)
        # image and masks: the pixel mirror, up to cv2's fixed-point sampling
        assert np.abs(b["image"] - a["image"][:, :, ::-1]).mean() < 2e-3
        assert np.abs(tb[48] - ta[48][:, ::-1]).mean() < 1e-2
        # the left shoulder of the unflipped sample is the right shoulder of the flipped one
        lsho, rsho = SIMPLEPOSE18.keypoints.index("left_shoulder"), SIMPLEPOSE18.keypoints.index(
            "right_shoulder")
        np.testing.assert_allclose(tb[30 + rsho], ta[30 + lsho][:, ::-1], atol=1e-5)


def test_keypoint_peaks_land_where_the_affine_puts_the_joints(dataset):
    to_coco = list(SIMPLEPOSE18.to_coco)
    kflip = SIMPLEPOSE18.keypoint_flip
    o = SIZE // 4
    peak_min = math.exp(-(2**2 + 2**2) / (2 * 9.0**2))  # joint within half a cell of a centre
    checked = 0
    for epoch in (0, 1):
        for i in range(len(dataset)):
            draw = dataset.sample_aug(i, epoch)
            s = dataset[(epoch, i)]
            _, ann = dataset.samples[i]
            kps = np.asarray(ann["keypoints"], dtype=np.float64).reshape(17, 3)
            xy = kps[:, :2] @ s["matrix"][:, :2].T + s["matrix"][:, 2]
            for c in np.flatnonzero(kps[:, 2] > 0):
                part = to_coco.index(c)
                channel = kflip[part] if draw.flip else part
                cx, cy = np.round((xy[c] - 1.5) / 4).astype(int)
                if 0 <= cx < o and 0 <= cy < o:
                    assert s["targets"][30 + channel, cy, cx] >= peak_min - 1e-6
                    checked += 1
    assert checked > 50


def test_affine_matches_spec_composition():
    draw = BottomUpAugDraw(flip=True, rotation=30.0, scale=0.8, shift=(10.0, -20.0))
    m = bottomup_affine((100.0, 50.0), 200.0, 512, draw)
    s = 0.6 * 511 / 200.0 * 0.8
    th = math.radians(30.0)
    rot = np.array([[math.cos(th), math.sin(th)], [-math.sin(th), math.cos(th)]])
    lin = np.diag([-1.0, 1.0]) @ (s * rot)
    expected = lin @ (np.array([130.0, 70.0]) - [100.0, 50.0]) + [255.5 + 10, 255.5 - 20]
    np.testing.assert_allclose(m[:, :2] @ [130.0, 70.0] + m[:, 2], expected, atol=1e-9)


# ----------------------------------------------------------------------------- bad images
def test_missing_and_corrupt_images_are_skipped_and_counted(sample_ann, tmp_path, caplog):
    _need_images()
    shutil.copy(VAL_IMAGES / "000000463730.jpg", tmp_path / "000000463730.jpg")
    (tmp_path / "000000252219.jpg").write_bytes(b"this is not a jpeg")
    # 000000040083.jpg is missing
    ds = BottomUpDataset(sample_ann, tmp_path, input_size=SIZE)
    with caplog.at_level(logging.WARNING, logger="simplepose.data.bottomup_dataset"):
        ids = [ds[i]["image_id"] for i in range(len(ds))]
    assert ids == [463730] * len(ds)
    assert ds.num_bad_images == 2
    assert set(ds.bad_images) == {40083, 252219}
    assert "000000040083.jpg" in caplog.text and "000000252219.jpg" in caplog.text
    # the replacement is deterministic: the next readable sample, with its own augmentation
    first_good = next(i for i, (img, _) in enumerate(ds.samples) if img == 463730)
    np.testing.assert_array_equal(ds[0]["targets"], ds[first_good]["targets"])


def test_renderers_agree(sample_ann):
    _need_images()
    a = BottomUpDataset(sample_ann, VAL_IMAGES, input_size=SIZE, renderer="numba")
    b = BottomUpDataset(sample_ann, VAL_IMAGES, input_size=SIZE, renderer="numpy",
                        codec=SimplePoseCodec())  # fmt: skip
    for i in (1, 7):
        np.testing.assert_allclose(a[i]["targets"], b[i]["targets"], atol=1e-6)


# ----------------------------------------------------------------------------- masks
def test_person_masks_equal_per_annotation_masks(sample_ann):
    """The merged-RLE masks equal the plain recipe: every annotation decoded, OR-ed per group."""
    from simplepose.data.masks import annotation_mask, person_masks

    for image_id in sample_ann.image_ids:
        h, w = sample_ann.image_size(image_id)
        anns = sample_ann.annotations_by_image[image_id]
        ref_all, unlabelled, labelled, crowd = (np.zeros((h, w), np.uint8) for _ in range(4))
        for ann in anns:
            m = annotation_mask(ann, h, w)
            ref_all |= m
            if ann.get("iscrowd", 0):
                crowd |= m
            elif ann.get("num_keypoints", 0) == 0:
                unlabelled |= m
            else:
                labelled |= m
        ref_miss = 1 - (unlabelled | (crowd & (1 - labelled)))
        got_all, got_miss = person_masks(anns, h, w)
        np.testing.assert_array_equal(got_all, ref_all)
        np.testing.assert_array_equal(got_miss, ref_miss)
        assert got_all.dtype == got_miss.dtype == np.uint8
    assert person_masks([], 5, 7)[1].min() == 1


def test_masks_equal_full_size_warp(dataset):
    """mask_miss (warped on a region of interest only) and channel 48 equal the plain recipe:
    full-size bilinear warp of the original-px mask, INTER_AREA to the grid (+ 3x3 erosion)."""
    import cv2

    from simplepose.data.masks import person_masks

    o = SIZE // 4
    for epoch in (0, 1):
        for i in range(len(dataset)):
            s = dataset[(epoch, i)]
            image_id = s["image_id"]
            h, w = dataset.coco.image_size(image_id)
            mask_all, mask_miss = person_masks(dataset.coco.annotations_by_image[image_id], h, w)

            def warp(m, border, matrix=s["matrix"]):
                big = cv2.warpAffine(m * np.uint8(255), matrix, (SIZE, SIZE),
                                     flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                                     borderValue=border)  # fmt: skip
                return cv2.resize(big, (o, o), interpolation=cv2.INTER_AREA)

            miss = warp(mask_miss, 255).astype(np.float32) / 255
            # cv2's fixed-point sampling depends on the warp origin: at most one grey level
            np.testing.assert_allclose(s["mask_miss"][0], miss, atol=1.01 / 255)
            person = cv2.erode(warp(mask_all, 0), np.ones((3, 3), np.uint8)) / np.float32(255)
            np.testing.assert_allclose(s["targets"][48], person, atol=1e-6)


def test_dataloader_workers_give_the_same_samples(sample_ann):
    _need_images()
    torch = pytest.importorskip("torch")
    ds = BottomUpDataset(sample_ann, VAL_IMAGES, input_size=128, image_ids=[252219, 40083])
    ds.set_epoch(2)
    # timeout: fail instead of hanging should a worker deadlock
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2, timeout=120)
    batches = list(loader)
    got = torch.cat([b["targets"] for b in batches]).numpy()
    want = np.stack([ds[i]["targets"] for i in range(len(ds))])
    np.testing.assert_array_equal(got, want)
    assert torch.cat([b["image_id"] for b in batches]).tolist() == [
        ds.samples[i][0] for i in range(len(ds))
    ]


def test_whole_image_mode_matches_the_inference_geometry_and_the_oracle(sample_ann):
    """crop='image' renders exactly the maps the bottom-up oracle (and so inference) uses."""
    from simplepose.errors import InputError
    from simplepose.oracle.bottomup import render_oracle_sample

    _need_images()
    ds = BottomUpDataset(
        sample_ann, VAL_IMAGES, input_size=256, augment=False, crop="image", renderer="numpy"
    )
    assert len(ds) == 3  # one sample per image with a labelled person
    for index in range(len(ds)):
        sample = ds[index]
        oracle = render_oracle_sample(sample_ann, sample["image_id"], box_size=256)
        g = oracle.geometry
        assert sample["image"].shape == (3, g.pad_h, g.pad_w)
        np.testing.assert_allclose(sample["matrix"], g.original_to_input_matrix())
        np.testing.assert_allclose(
            sample["targets"][:48], oracle.maps[:48], atol=1e-5
        )  # limbs + keypoints
        pad = sample["image"][:, g.in_h + 1 :, :]
        assert pad.size == 0 or np.allclose(pad, 128 / 255)  # the inference pad value
    with pytest.raises(InputError, match="augment=False"):
        BottomUpDataset(sample_ann, VAL_IMAGES, crop="image", augment=True)
