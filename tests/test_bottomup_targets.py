"""Bottom-up codecs: target geometry and encode -> decode round trips."""

import numpy as np
import pytest

from simplepose.codecs.bottomup import ABSENT, VISIBLE, OpenPosePafCodec, SimplePoseCodec, coco_to_internal
from simplepose.codecs.render import render_keypoint_gaussians, render_limb_gaussians
from simplepose.geometry import BottomUpGeometry
from simplepose.skeleton import SIMPLEPOSE18

from synthetic import PERSON


def test_keypoint_peak_sits_at_the_cell_of_the_joint():
    stride = 4
    for x, y in [(41.5, 61.5), (40.0, 60.0), (3.2, 120.9), (126.7, 2.1)]:
        maps = render_keypoint_gaussians(np.array([[[x, y]]]), np.array([[True]]), (32, 32), stride, 9.0)
        iy, ix = np.unravel_index(np.argmax(maps[0]), maps[0].shape)
        assert (ix, iy) == (round((x - 1.5) / 4), round((y - 1.5) / 4))
        centre = np.array([4 * ix + 1.5, 4 * iy + 1.5])
        expected = np.exp(-((centre - (x, y)) ** 2).sum() / (2 * 81.0))
        assert maps[0, iy, ix] == pytest.approx(expected, rel=1e-6)


def test_keypoints_of_two_people_combine_by_max():
    joints = np.array([[[40.0, 40.0]], [[52.0, 40.0]]])
    both = render_keypoint_gaussians(joints, np.ones((2, 1), bool), (24, 24), 4, 9.0)
    one = render_keypoint_gaussians(joints[:1], np.ones((1, 1), bool), (24, 24), 4, 9.0)
    two = render_keypoint_gaussians(joints[1:], np.ones((1, 1), bool), (24, 24), 4, 9.0)
    np.testing.assert_allclose(both, np.maximum(one, two))


def test_limb_map_is_one_on_the_segment_and_zero_outside_its_box():
    joints = np.array([[[21.5, 21.5], [61.5, 21.5]]])  # horizontal limb on cell-centre row 5
    maps = render_limb_gaussians(joints, np.ones((1, 2), bool), np.array([[0, 1]]), (16, 24), 4, 7.0)
    assert np.allclose(maps[0, 5, 5:16], 1.0)
    assert maps[0, 5, 0:4].max() == 0.0 and maps[0, 5, 17:].max() == 0.0  # beyond the +4 px box
    assert maps[0, 0:4].max() == 0.0 or maps[0, 4, 10] == pytest.approx(np.exp(-16 / 98), rel=1e-6)
    assert maps[0, 4, 10] == pytest.approx(np.exp(-16 / 98), rel=1e-6)  # one cell = 4 px away


def test_limb_map_reference_mode_floor_and_mean():
    # An X of two people's limbs of the same type on a 32x32 grid (cell centres 4i + 1.5).
    joints = np.array([[[21.5, 21.5], [101.5, 101.5]], [[21.5, 101.5], [101.5, 21.5]]])
    labelled = np.ones((2, 2), bool)
    clean = render_limb_gaussians(joints, labelled, np.array([[0, 1]]), (32, 32), 4, 7.0)
    ref = render_limb_gaussians(joints, labelled, np.array([[0, 1]]), (32, 32), 4, 7.0, floor=0.01, combine="mean")
    assert ref[0, 15, 15] == pytest.approx(1.0) and clean[0, 15, 15] == pytest.approx(1.0)  # crossing
    # edge midpoint: 28 px from both lines, inside both boxes: floored, averaged
    assert ref[0, 5, 15] == pytest.approx(0.01) and clean[0, 5, 15] == 0.0
    # on the first diagonal only: the mean with the other person's floor halves it
    assert clean[0, 7, 7] == pytest.approx(1.0) and ref[0, 7, 7] == pytest.approx(0.505)


def test_coco_to_internal_adds_the_neck():
    internal = coco_to_internal(PERSON[None])[0]
    neck = SIMPLEPOSE18.keypoints.index("neck")
    np.testing.assert_allclose(internal[neck, :2], (PERSON[5, :2] + PERSON[6, :2]) / 2)
    assert internal[neck, 2] == VISIBLE
    occluded_shoulder = PERSON.copy()
    occluded_shoulder[6, 2] = 0
    assert coco_to_internal(occluded_shoulder[None])[0, neck, 2] == ABSENT


def _round_trip(people_coco, width, height, codec, params=None):
    from simplepose.decode.params import GroupingParams

    geometry = BottomUpGeometry.for_image(width, height, box_size=512, stride=codec.stride)
    joints = coco_to_internal(np.asarray(people_coco))
    joints[..., :2] = geometry.original_to_input(joints[..., :2])
    maps = codec.encode(joints, geometry.heatmap_hw)
    return codec.decode(maps, geometry, params or GroupingParams())


def _match(decoded, truth):
    """Max keypoint error (original px) of each true person against its best decoded one."""
    errors = []
    for t in truth:
        vis = t[:, 2] > 0
        best = min(decoded, key=lambda p: np.abs(p.keypoints[vis, :2] - t[vis, :2]).max())
        errors.append(np.abs(best.keypoints[vis, :2] - t[vis, :2]).max())
        assert (best.keypoints[~vis, 2] == 0).all()
    return errors


def test_simplepose_round_trip_synthetic_people():
    people = [PERSON, PERSON + [150, 10, 0], PERSON * [1, 1, 1] + [300, 60, 0]]
    decoded = _round_trip(people, 480, 360, SimplePoseCodec())
    assert len(decoded) == 3
    assert max(_match(decoded, people)) < 0.05  # log-parabola refinement is exact on Gaussians


def test_simplepose_round_trip_partial_person():
    partial = PERSON.copy()
    partial[[0, 1, 2, 3, 4, 13, 14, 15, 16], :] = 0  # shoulders, arms, hips only
    decoded = _round_trip([partial], 300, 300, SimplePoseCodec())
    assert len(decoded) == 1 and decoded[0].num_keypoints == 8
    assert max(_match(decoded, [partial])) < 0.05


def test_openpose_paf_round_trip_synthetic_people():
    people = [PERSON, PERSON + [160, 0, 0]]
    decoded = _round_trip(people, 400, 300, OpenPosePafCodec())
    assert len(decoded) == 2
    assert max(_match(decoded, people)) < 0.1


def test_simplepose_round_trip_real_people(sample_ann):
    from simplepose.oracle.bottomup import oracle_people, oracle_pipeline
    from simplepose.skeleton import COCO_SIGMAS

    pipeline = oracle_pipeline()
    for image_id in sample_ann.image_ids:
        decoded = oracle_people(sample_ann, image_id, pipeline)
        gts = [a for a in sample_ann.annotations_by_image[image_id] if not a["iscrowd"] and a["num_keypoints"] >= 5]
        for g in gts:  # every well-labelled person comes back (a keypoint no limb reaches can be lost)
            t = np.asarray(g["keypoints"], float).reshape(17, 3)
            vis = t[:, 2] > 0
            d2 = ((np.stack([p.keypoints[:, :2] for p in decoded]) - t[:, :2]) ** 2).sum(-1)
            oks = np.exp(-d2 / (2 * g["area"] * (2 * COCO_SIGMAS) ** 2))[:, vis].mean(1)
            assert oks.max() > 0.9, (image_id, g["id"], oks.max())


def test_person_mask_channels(sample_ann):
    from simplepose.data.masks import person_masks

    image_id = 463730  # persons without keypoints and a crowd region
    h, w = sample_ann.image_size(image_id)
    anns = sample_ann.annotations_by_image[image_id]
    mask_all, mask_miss = person_masks(anns, h, w)
    assert mask_all.shape == (h, w) and mask_all.dtype == np.uint8
    from simplepose.data.masks import annotation_mask

    labelled = np.zeros((h, w), np.uint8)
    for a in anns:
        if not a["iscrowd"] and a["num_keypoints"] > 0:
            labelled |= annotation_mask(a, h, w)
    crowd = next(a for a in anns if a["iscrowd"])
    unlabelled = next(a for a in anns if not a["iscrowd"] and a["num_keypoints"] == 0)
    crowd_only = (annotation_mask(crowd, h, w) == 1) & (labelled == 0)
    assert crowd_only.any() and (mask_miss[crowd_only] == 0).all()
    assert (mask_miss[annotation_mask(unlabelled, h, w) == 1] == 0).all()
    any_unlabelled = np.zeros((h, w), np.uint8)
    for a in anns:
        if not a["iscrowd"] and a["num_keypoints"] == 0:
            any_unlabelled |= annotation_mask(a, h, w)
    assert (mask_miss[(labelled == 1) & (any_unlabelled == 0)] == 1).all()
    assert (mask_all[annotation_mask(crowd, h, w) == 1] == 1).all()
