"""Draw people (keypoints in original px, any registered layout: COCO-17 by default, MPII-16,
CrowdPose-14 from :mod:`simplepose.skeleton`) on BGR images and video frames.

Pure numpy + OpenCV (no torch), so rendering can run in a worker thread beside inference.

    from simplepose.visualize import draw_people, draw_hud
    canvas = draw_people(image, predictor.predict(image), kpt_threshold=0.2)
    canvas = draw_hud(canvas, count=len(people), fps=12.3)
"""

from __future__ import annotations

import logging
from typing import Sequence

import cv2
import numpy as np

from .errors import InputError
from .skeleton import COCO17, LAYOUTS, get_layout
from .utils.image import check_image

__all__ = ["KEYPOINT_COLORS", "LIMB_COLORS", "auto_thickness", "draw_hud", "draw_people", "layout_colors"]

LOG = logging.getLogger(__name__)


def layout_colors(layout) -> tuple[tuple, tuple]:
    """``(limb colours, keypoint colours)`` (BGR) of a layout: one colour per drawing-skeleton
    limb on a fixed hue wheel (a limb keeps its colour across frames and images); keypoint
    dots left blue-ish, right orange-ish, centre (face, head, trunk) green. COCO's face points
    (nose, eyes, ears) are all green."""
    layout = get_layout(layout)
    n = len(layout.skeleton)
    limbs = tuple(
        tuple(int(c) for c in cv2.cvtColor(np.uint8([[[int(180 * i / n), 230, 255]]]), cv2.COLOR_HSV2BGR)[0, 0])
        for i in range(n)
    )
    face = ("eye", "ear")
    dots = tuple(
        (0, 220, 0) if name.startswith("nose") or name.endswith(face) or not name.startswith(("left", "right"))
        else ((255, 128, 0) if name.startswith("left") else (0, 128, 255))
        for name in layout.keypoints
    )
    return limbs, dots


LIMB_COLORS, KEYPOINT_COLORS = layout_colors(COCO17)  # one per COCO17.skeleton limb / keypoint
_BOX_COLOR = (60, 220, 60)


def auto_thickness(image_shape: Sequence[int]) -> int:
    """Line width in px that scales with the image: 2 px at 640 px long side, at least 1."""
    return max(1, int(round(max(image_shape[:2]) / 320.0)))


def draw_people(
    image: np.ndarray,
    people,
    kpt_threshold: float = 0.2,
    draw_boxes: bool = False,
    thickness: int | None = None,
    copy: bool = True,
    layout=None,
) -> np.ndarray:
    """Draw skeletons (one colour per limb), keypoint dots and optionally boxes.

    Args:
        image: BGR uint8 (H, W, 3).
        people: iterable of :class:`~simplepose.structures.Person` (or anything with a
            ``keypoints`` (K, 3) array of x, y original px + score, and ``box`` xyxy).
        kpt_threshold: keypoints with score < this (or missing, score 0) are not drawn, nor
            any limb touching them.
        draw_boxes: also draw each person's box.
        thickness: limb width in px; None scales with the image size (:func:`auto_thickness`).
        copy: draw on a copy (default) or in place.
        layout: the keypoint layout (name or :class:`~simplepose.skeleton.KeypointLayout`);
            None: the registered layout with the people's K keypoints (17 COCO, 16 MPII,
            14 CrowdPose).

    Raises:
        InputError: a person whose keypoint count is not the layout's (or no registered
            layout's, with ``layout=None``).
    Returns:
        The annotated BGR uint8 image.
    """
    image = check_image(image, "draw_people")
    canvas = image.copy() if copy else image
    t = int(thickness) if thickness else auto_thickness(image.shape)
    radius = max(2, t + 1)
    h, w = image.shape[:2]
    chosen = None if layout is None else get_layout(layout)
    for person in people:
        kpts = np.asarray(person.keypoints, dtype=np.float64).reshape(-1, 3)
        lay = chosen or _layout_for(len(kpts))
        if len(kpts) != lay.num_keypoints:
            raise InputError(f"draw_people: a person has {len(kpts)} keypoints, the {lay.name} layout {lay.num_keypoints}")
        limb_colors, dot_colors = (LIMB_COLORS, KEYPOINT_COLORS) if lay is COCO17 else layout_colors(lay)
        ok = (kpts[:, 2] >= kpt_threshold) & (kpts[:, 2] > 0) & np.isfinite(kpts).all(axis=1)
        # limit coordinates so cv2 never sees huge values (it draws nothing useful there anyway)
        pts = np.clip(np.nan_to_num(kpts[:, :2]), -4 * max(h, w), 4 * max(h, w))
        ipts = np.round(pts).astype(np.int64)
        if draw_boxes and getattr(person, "box", None) is not None:
            x1, y1, x2, y2 = np.round(np.asarray(person.box, dtype=np.float64)).astype(int)
            if x2 > x1 or y2 > y1:
                cv2.rectangle(canvas, (x1, y1), (x2, y2), _BOX_COLOR, max(1, t // 2), cv2.LINE_AA)
        for (a, b), color in zip(lay.skeleton, limb_colors):
            if ok[a] and ok[b]:
                cv2.line(canvas, tuple(map(int, ipts[a])), tuple(map(int, ipts[b])), color, t, cv2.LINE_AA)
        for k in np.flatnonzero(ok):
            cv2.circle(canvas, tuple(map(int, ipts[k])), radius, dot_colors[k], -1, cv2.LINE_AA)
    return canvas


def _layout_for(num_keypoints: int):
    for lay in LAYOUTS.values():
        if lay.num_keypoints == num_keypoints:
            return lay
    raise InputError(
        f"draw_people: no keypoint layout has {num_keypoints} keypoints "
        f"(registered: {', '.join(f'{n} {lay.num_keypoints}' for n, lay in LAYOUTS.items())})"
    )


def draw_hud(image: np.ndarray, count: int, fps: float | None = None, copy: bool = False) -> np.ndarray:
    """Overlay "people: N  fps: F" in the top-left corner on a dark backing box.

    Args:
        image: BGR uint8 (H, W, 3); drawn in place unless ``copy``.
        count: number of people shown.
        fps: frames per second to show; None leaves it out.
    """
    image = check_image(image, "draw_hud")
    canvas = image.copy() if copy else image
    text = f"people: {int(count)}" + (f"  fps: {fps:.1f}" if fps is not None else "")
    scale = max(0.4, max(image.shape[:2]) / 1280.0)
    thick = max(1, int(round(scale * 2)))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    pad = max(3, int(round(6 * scale)))
    x2, y2 = min(tw + 2 * pad, image.shape[1]), min(th + base + 2 * pad, image.shape[0])
    roi = canvas[:y2, :x2]
    roi[:] = (roi.astype(np.uint16) * 2 // 5).astype(np.uint8)  # darken for contrast
    cv2.putText(canvas, text, (pad, pad + th), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA)
    return canvas
