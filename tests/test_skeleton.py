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
    assert layout.extra["keypoint_bkg_flip"] == (
        0,
        1,
        5,
        6,
        7,
        2,
        3,
        4,
        11,
        12,
        13,
        8,
        9,
        10,
        15,
        14,
        17,
        16,
        18,
        19,
    )
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
    assert len(sk.COCO_SKELETON) == 19 and all(
        0 <= a < 17 and 0 <= b < 17 for a, b in sk.COCO_SKELETON
    )
    assert sk.COCO_SIGMAS[0] == pytest.approx(0.026)


LAYOUTS = list(sk.LAYOUTS.values())


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda l: l.name)
def test_layout_flip_is_an_involution_swapping_left_and_right(layout):
    perm = np.asarray(layout.flip_index)
    assert sorted(perm.tolist()) == list(range(layout.num_keypoints))
    assert (perm[perm] == np.arange(layout.num_keypoints)).all()
    for i, name in enumerate(layout.keypoints):
        mirrored = layout.keypoints[perm[i]]
        assert mirrored == name.replace("left", "@").replace("right", "left").replace("@", "right")
    gperm = np.asarray(layout.graph_flip_index)
    assert (gperm[gperm] == np.arange(len(layout.graph_keypoints))).all()


def _components(n, edges):
    parent = list(range(n))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in edges:
        parent[find(a)] = find(b)
    return len({find(i) for i in range(n)})


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda l: l.name)
def test_limb_graph_connects_every_keypoint(layout):
    n = len(layout.graph_keypoints)
    assert all(0 <= a < n and 0 <= b < n and a != b for a, b in layout.limbs)
    assert len(set(map(frozenset, layout.limbs))) == layout.num_limbs  # no duplicate limb
    assert _components(n, layout.limbs) == 1
    # without the 7 or 9 redundant cross-links (step 4) the graph is still connected
    assert _components(n, layout.limbs[: layout.num_limbs - 9 + (layout.name != "coco17") * 2]) == 1


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda l: l.name)
def test_limb_graph_is_mirror_symmetric(layout):
    bu = sk.bottomup_layout(layout)
    kf = bu.keypoint_flip
    for k, (a, b) in enumerate(bu.limbs):
        assert {*bu.limbs[bu.limb_flip[k]]} == {kf[a], kf[b]}
    assert sorted(bu.limb_flip) == list(range(bu.num_limbs))


def test_limb_rule_reproduces_simplepose_30_limbs_in_order():
    coco = sk.COCO17
    assert coco.graph_keypoints[17] == "neck" and coco.num_limbs == 30
    sp = sk.SIMPLEPOSE18
    mapped = tuple(
        (sp.keypoints.index(coco.graph_keypoints[a]), sp.keypoints.index(coco.graph_keypoints[b]))
        for a, b in coco.limbs
    )
    assert mapped == sp.limbs
    assert sk.bottomup_layout("coco17") is sk.SIMPLEPOSE18


def test_limb_rule_on_other_layouts():
    def names(lay):
        return [(lay.graph_keypoints[a], lay.graph_keypoints[b]) for a, b in lay.limbs]

    crowd = names(sk.CROWDPOSE14)
    assert len(crowd) == 20 and crowd[0] == ("neck", "head")
    assert ("head", "right_shoulder") in crowd and ("right_hip", "left_knee") in crowd
    mpii = names(sk.MPII16)
    assert len(mpii) == 23 and mpii[:4] == [
        ("thorax", "upper_neck"), ("thorax", "head_top"), ("thorax", "pelvis"),
        ("upper_neck", "head_top"),
    ]  # fmt: skip
    assert len(sk.MPII16.graph_keypoints) == 16  # the root is a real keypoint


def test_layout_constants_and_registry():
    assert sk.COCO17.keypoints == sk.COCO_KEYPOINTS and sk.COCO17.flip_index == sk.COCO_FLIP_INDEX
    assert np.allclose(sk.COCO17.sigmas_array, sk.COCO_SIGMAS)
    assert sk.get_layout("mpii16").num_keypoints == 16
    assert sk.get_layout(sk.CROWDPOSE14) is sk.CROWDPOSE14
    assert sk.CROWDPOSE14.sigmas_array[-1] == pytest.approx(0.079)
    assert sk.layout_from_keypoint_names(sk.CROWDPOSE14.keypoints) is sk.CROWDPOSE14
    assert sk.layout_from_keypoint_names(["a"]) is None
    with pytest.raises(sk.InputError, match="unknown keypoint layout 'h36m'"):
        sk.get_layout("h36m")
    with pytest.raises(sk.InputError, match="no OKS sigmas"):
        _ = sk.MPII16.sigmas_array
    for lay in LAYOUTS:
        k = lay.num_keypoints
        assert all(0 <= a < k and 0 <= b < k for a, b in lay.skeleton)


def test_body_plan_errors_name_the_problem():
    with pytest.raises(sk.InputError, match="not a right point"):
        sk.derive_limbs(
            sk.COCO_KEYPOINTS, sk.COCO_SKELETON,
            sk.BodyPlan(root=(5, 6), centre=(0,),
                        chains=((5, 7, 9), (6, 8, 10), (12, 14), (11, 13))),
        )  # fmt: skip
    with pytest.raises(sk.InputError, match="not a keypoint index below 17"):
        sk.derive_limbs(sk.COCO_KEYPOINTS, (), sk.BodyPlan(root=40, centre=(0,), chains=()))


def test_both_layout_kinds_refuse_bad_pairs_and_flips_naming_the_layout():
    """The checks the two layout kinds share (pairs within the keypoints, a flip that is a
    permutation) and those of a bottom-up layout (limb flip, to_coco, limb kind)."""
    from dataclasses import replace

    coco, sp = sk.COCO17, sk.SIMPLEPOSE18
    with pytest.raises(sk.InputError, match=r"layout coco17: pair \(3, 17\) is not two of 17"):
        replace(coco, skeleton=coco.skeleton + ((3, 17),))
    with pytest.raises(sk.InputError, match=r"layout coco17: flip pairs .* overlap"):
        replace(coco, flip_pairs=((1, 2), (2, 3)))
    with pytest.raises(sk.InputError, match=r"layout simplepose18: pair \(1, 1\) is not two of 18"):
        replace(sp, limbs=sp.limbs[:-1] + ((1, 1),))
    with pytest.raises(sk.InputError, match="simplepose18: keypoint_flip is not a permutation"):
        replace(sp, keypoint_flip=(0,) * 18)
    with pytest.raises(sk.InputError, match="simplepose18: limb_flip is not a permutation of 30"):
        replace(sp, limb_flip=sp.limb_flip[:-1])
    with pytest.raises(sk.InputError, match="simplepose18: 17 to_coco for 18 parts"):
        replace(sp, to_coco=sp.to_coco[:-1])
    with pytest.raises(sk.InputError, match="limb_kind must be 'gaussian' or 'paf'"):
        replace(sp, limb_kind="heatmap")
    with pytest.raises(sk.InputError, match=r"layout x: the mirror images \[\(0, 2\)\] are not"):
        sk.limb_flip_from(((0, 1), (1, 2)), (0, 2, 1), "x")
    assert sk.limb_flip_from(sk.OPENPOSE18.limbs, sk.OPENPOSE18.keypoint_flip) == (
        sk.OPENPOSE18.limb_flip
    )
    assert sk.bottomup_layout("mpii16").limbs_array.shape == (sk.MPII16.num_limbs, 2)
    assert sk.MPII16.limbs_array.tolist() == [list(limb) for limb in sk.MPII16.limbs]
