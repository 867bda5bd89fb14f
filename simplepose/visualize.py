"""Draw people (COCO-17 keypoints in original px) on BGR images and video frames.

Pure numpy + OpenCV (no torch), so rendering can run in a worker thread beside inference.

    from simplepose.visualize import draw_people, draw_hud
    canvas = draw_people(image, predictor.predict(image), kpt_threshold=0.2)
    canvas = draw_hud(canvas, count=len(people), fps=12.3)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import cv2
import numpy as np

from .skeleton import COCO_SKELETON
from .utils.image import check_image

__all__ = ["KEYPOINT_COLORS", "LIMB_COLORS", "auto_thickness", "draw_hud", "draw_people"]

LOG = logging.getLogger(__name__)

# One BGR colour per COCO_SKELETON limb (a fixed hue wheel, so a limb keeps its colour
# across frames and images).
LIMB_COLORS: tuple[tuple[int, int, int], ...] = tuple(
    tuple(
        int(c)
        for c in cv2.cvtColor(
            np.uint8([[[int(180 * i / len(COCO_SKELETON)), 230, 255]]]), cv2.COLOR_HSV2BGR
        )[0, 0]
    )
    for i in range(len(COCO_SKELETON))
)
# Keypoint dots: left side blue-ish, right side orange-ish, face/centre green (BGR).
KEYPOINT_COLORS: tuple[tuple[int, int, int], ...] = tuple(
    (0, 220, 0) if k < 5 else ((255, 128, 0) if k % 2 == 1 else (0, 128, 255)) for k in range(17)
)
_BOX_COLOR = (60, 220, 60)


def auto_thickness(image_shape: Sequence[int]) -> int:
    """Line width in px that scales with the image: 2 px at 640 px long side, at least 1."""
    return max(1, round(max(image_shape[:2]) / 320.0))


def draw_people(
    image: np.ndarray,
    people,
    kpt_threshold: float = 0.2,
    draw_boxes: bool = False,
    thickness: int | None = None,
    copy: bool = True,
) -> np.ndarray:
    """Draw skeletons (one colour per limb), keypoint dots and optionally boxes.

    Args:
        image: BGR uint8 (H, W, 3).
        people: iterable of :class:`~simplepose.structures.Person` (or anything with a
            ``keypoints`` (17, 3) array of x, y original px + score, and ``box`` xyxy).
        kpt_threshold: keypoints with score < this (or missing, score 0) are not drawn, nor
            any limb touching them.
        draw_boxes: also draw each person's box.
        thickness: limb width in px; None scales with the image size (:func:`auto_thickness`).
        copy: draw on a copy (default) or in place.

    Returns:
        The annotated BGR uint8 image.
    """
    image = check_image(image, "draw_people")
    canvas = image.copy() if copy else image
    t = int(thickness) if thickness else auto_thickness(image.shape)
    radius = max(2, t + 1)
    h, w = image.shape[:2]
    for person in people:
        kpts = np.asarray(person.keypoints, dtype=np.float64).reshape(-1, 3)
        ok = (kpts[:, 2] >= kpt_threshold) & (kpts[:, 2] > 0) & np.isfinite(kpts).all(axis=1)
        # limit coordinates so cv2 never sees huge values (it draws nothing useful there anyway)
        pts = np.clip(np.nan_to_num(kpts[:, :2]), -4 * max(h, w), 4 * max(h, w))
        ipts = np.round(pts).astype(np.int64)
        if draw_boxes and getattr(person, "box", None) is not None:
            x1, y1, x2, y2 = np.round(np.asarray(person.box, dtype=np.float64)).astype(int)
            if x2 > x1 or y2 > y1:
                cv2.rectangle(canvas, (x1, y1), (x2, y2), _BOX_COLOR, max(1, t // 2), cv2.LINE_AA)
        for (a, b), color in zip(COCO_SKELETON, LIMB_COLORS):
            if ok[a] and ok[b]:
                cv2.line(
                    canvas,
                    tuple(map(int, ipts[a])),
                    tuple(map(int, ipts[b])),
                    color,
                    t,
                    cv2.LINE_AA,
                )
        for k in np.flatnonzero(ok):
            cv2.circle(
                canvas, tuple(map(int, ipts[k])), radius, KEYPOINT_COLORS[k], -1, cv2.LINE_AA
            )
    return canvas


def draw_hud(
    image: np.ndarray, count: int, fps: float | None = None, copy: bool = False
) -> np.ndarray:
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
    thick = max(1, round(scale * 2))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    pad = max(3, round(6 * scale))
    x2, y2 = min(tw + 2 * pad, image.shape[1]), min(th + base + 2 * pad, image.shape[0])
    roi = canvas[:y2, :x2]
    roi[:] = (roi.astype(np.uint16) * 2 // 5).astype(np.uint8)  # darken for contrast
    cv2.putText(
        canvas,
        text,
        (pad, pad + th),
        cv2.FONT_HERSHEY_SIMPLEX,
        scale,
        (255, 255, 255),
        thick,
        cv2.LINE_AA,
    )
    return canvas
