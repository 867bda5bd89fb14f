import numpy as np
import pytest

from simplepose import skeleton as sk


@pytest.mark.parametrize("layout", [sk.SIMPLEPOSE18, sk.OPENPOSE18], ids=lambda l: l.name)
def test_flip_permutations_are_involutions(layout):
    for perm in (layout.keypoint_flip, layout.limb_flip):
        perm = np.asarray(perm)
        assert sorted(perm.tolist()) == list(range(len(perm)))
        assert (perm[perm] == np.arange(len(perm))).all()


@pytest.mark.parametrize("layout", [sk.SIMPLEPOSE18, sk.OPENPOSE18], ids=lambda l: l.name)
def test_limb_flip_mirrors_every_limb(layout):
    kf = layout.keypoint_flip
    for k, (a, b) in enumerate(layout.limbs):
        ma, mb = layout.limbs[layout.limb_flip[k]]
        assert {ma, mb} == {kf[a], kf[b]}, f"limb {k} ({a}->{b}) does not map to its mirror"
    assert layout.limb_flip == layout.derived_limb_flip()


def test_left_right_names_swap_under_flip():
    for layout in (sk.SIMPLEPOSE18, sk.OPENPOSE18):
        for i, name in enumerate(layout.keypoints):
            mirrored = layout.keypoints[layout.keypoint_flip[i]]
            expected = name.replace("left", "@").replace("right", "left").replace("@", "right")
            assert mirrored == expected
    for i, name in enumerate(sk.COCO_KEYPOINTS):
        mirrored = sk.COCO_KEYPOINTS[sk.COCO_FLIP_INDEX[i]]
        assert mirrored == name.replace("left", "@").replace("right", "left").replace("@", "right")


def test_simplepose_layout_constants():
    layout = sk.SIMPLEPOSE18
    assert layout.num_limbs == 30 and layout.num_keypoints == 18
    assert layout.limbs[0] == (1, 0) and layout.limbs[29] == (8, 11)  # neck->nose, Rhip->Lhip
    assert layout.extra["keypoint_bkg_flip"] == (0, 1, 5, 6, 7, 2, 3, 4, 11, 12, 13, 8, 9, 10, 15, 14, 17, 16, 18, 19)
    # internal -> COCO drops exactly the neck and is a bijection onto the 17 COCO points
    to_coco = np.asarray(layout.to_coco)
    assert (to_coco == -1).sum() == 1 and layout.keypoints[int(np.argmin(to_coco))] == "neck"
    assert sorted(to_coco[to_coco >= 0].tolist()) == list(range(17))
    for part, coco in enumerate(layout.to_coco):
        if coco >= 0:
            assert layout.keypoints[part] == sk.COCO_KEYPOINTS[coco]


def test_openpose_paf_channels_cover_38_once():
    xy = np.asarray(sk.OPENPOSE18.extra["paf_xy"]).ravel()
    assert sorted(xy.tolist()) == list(range(38))


def test_coco_constants():
    assert len(sk.COCO_KEYPOINTS) == 17 and len(sk.COCO_SIGMAS) == 17
    assert len(sk.COCO_SKELETON) == 19 and all(0 <= a < 17 and 0 <= b < 17 for a, b in sk.COCO_SKELETON)
    assert sk.COCO_SIGMAS[0] == pytest.approx(0.026)
