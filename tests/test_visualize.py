"""simplepose.visualize: skeleton drawing and the HUD overlay (pure numpy/cv2)."""

from __future__ import annotations

import numpy as np
import pytest

from simplepose.skeleton import COCO_SKELETON
from simplepose.structures import Person
from simplepose.visualize import LIMB_COLORS, auto_thickness, draw_hud, draw_people


def _person(score: float = 0.9) -> Person:
    """A standing figure in a 200x200 image, every keypoint scored ``score``."""
    xy = np.array([
        [100, 30], [95, 25], [105, 25], [90, 28], [110, 28],      # face
        [80, 60], [120, 60], [70, 90], [130, 90], [65, 120], [135, 120],  # arms
        [88, 120], [112, 120], [86, 155], [114, 155], [85, 190], [115, 190],  # legs
    ], dtype=np.float64)  # fmt: skip
    kpts = np.column_stack([xy, np.full(17, score)])
    return Person.from_keypoints(kpts, score)


def _blank(h: int = 200, w: int = 200) -> np.ndarray:
    return np.zeros((h, w, 3), np.uint8)


def test_draws_pixels_along_every_limb_in_its_colour():
    person = _person()
    out = draw_people(_blank(), [person], thickness=3)
    for (a, b), color in zip(COCO_SKELETON, LIMB_COLORS):
        mid = np.round((person.keypoints[a, :2] + person.keypoints[b, :2]) / 2).astype(int)
        patch = out[mid[1] - 1 : mid[1] + 2, mid[0] - 1 : mid[0] + 2].reshape(-1, 3).astype(int)
        assert patch.max() > 0, f"limb {a}-{b} not drawn"
    # a limb far from every dot shows its own palette colour (left shin 15-13, dots at the ends)
    a, b = 15, 13
    k = list(COCO_SKELETON).index((a, b))
    mid = np.round((person.keypoints[a, :2] + person.keypoints[b, :2]) / 2).astype(int)
    assert np.abs(out[mid[1], mid[0]].astype(int) - np.array(LIMB_COLORS[k])).max() <= 40
    # the input is not modified (copy=True default)
    assert draw_people(_blank(), [person]).sum() > 0


def test_threshold_hides_low_score_keypoints_and_their_limbs():
    assert draw_people(_blank(), [_person(0.1)], kpt_threshold=0.2).sum() == 0
    assert draw_people(_blank(), [_person(0.1)], kpt_threshold=0.05).sum() > 0
    # missing keypoints (0, 0, 0) are never drawn, whatever the threshold
    missing = Person(np.zeros((17, 3)), 0.0, np.zeros(4))
    assert draw_people(_blank(), [missing], kpt_threshold=0.0).sum() == 0
    # one hidden ankle removes its dot and its limb but nothing else
    p = _person()
    p.keypoints[15, 2] = 0.05
    out = draw_people(_blank(), [p], thickness=2)
    x, y = p.keypoints[15, :2].astype(int)
    assert out[y - 2 : y + 3, x - 2 : x + 3].sum() == 0
    assert out.sum() > 0


def test_boxes_thickness_and_edge_cases():
    p = _person()
    with_box = draw_people(_blank(), [p], draw_boxes=True)
    without = draw_people(_blank(), [p])
    x1, y1 = p.box[:2].astype(int)
    assert with_box[y1, x1 + 5 : x1 + 20].sum() > without[y1, x1 + 5 : x1 + 20].sum()
    assert auto_thickness((200, 200)) == 1 and auto_thickness((1080, 1920)) == 6
    thin = (draw_people(_blank(400, 400), [p], thickness=1) > 0).any(axis=2).sum()
    thick = (draw_people(_blank(400, 400), [p], thickness=5) > 0).any(axis=2).sum()
    assert thick > 2 * thin
    # off-image and non-finite coordinates do not raise
    q = _person()
    q.keypoints[0, :2] = [1e9, -1e9]
    q.keypoints[1, :2] = [np.nan, np.inf]
    draw_people(_blank(), [q])
    assert draw_people(_blank(), []).sum() == 0
    with pytest.raises(ValueError):
        draw_people(np.zeros((10, 10), np.float32), [p])


def test_hud_writes_count_and_fps_top_left_in_place():
    img = np.full((240, 320, 3), 200, np.uint8)
    out = draw_hud(img, 3, 12.5)
    assert out is img  # in place by default
    top_left, bottom_right = out[:30, :120], out[-60:, -60:]
    assert (top_left < 200).any() and (top_left == 255).any()  # dark backing + white text
    assert (bottom_right == 200).all()
    wide = draw_hud(np.full((240, 320, 3), 200, np.uint8), 3, 12.5)
    narrow = draw_hud(np.full((240, 320, 3), 200, np.uint8), 3, None)
    assert (wide != 200).sum() > (narrow != 200).sum()  # the fps text takes room
    copy = np.zeros((50, 50, 3), np.uint8)
    assert draw_hud(copy, 1, copy=True) is not copy


def test_draw_people_other_layouts():
    from simplepose.errors import InputError
    from simplepose.skeleton import CROWDPOSE14, MPII16
    from simplepose.structures import Person
    from simplepose.visualize import KEYPOINT_COLORS, draw_people, layout_colors

    assert KEYPOINT_COLORS[:5] == ((0, 220, 0),) * 5 and KEYPOINT_COLORS[5] == (255, 128, 0)
    for layout in (MPII16, CROWDPOSE14):
        kp = np.zeros((layout.num_keypoints, 3))
        kp[:, 0] = np.linspace(10, 90, layout.num_keypoints)
        kp[:, 1] = np.linspace(10, 90, layout.num_keypoints)
        kp[:, 2] = 1.0
        person = Person.from_keypoints(kp, 1.0)
        out = draw_people(np.zeros((100, 100, 3), np.uint8), [person])
        assert out.any()
        limbs, dots = layout_colors(layout)
        assert len(limbs) == len(layout.skeleton) and len(dots) == layout.num_keypoints
    with pytest.raises(InputError, match="no keypoint layout has 5 keypoints"):
        draw_people(np.zeros((10, 10, 3), np.uint8), [Person.from_keypoints(np.ones((5, 3)), 1.0)])
    with pytest.raises(InputError, match="has 14 keypoints, the mpii16 layout 16"):
        draw_people(np.zeros((10, 10, 3), np.uint8), [person], layout="mpii16")
