"""Draw people (keypoints in original px, any registered layout: COCO-17 by default, MPII-16,
CrowdPose-14 from :mod:`simplepose.skeleton`) on BGR images and video frames.

Pure numpy + OpenCV (no torch), so rendering can run in a worker thread beside inference.

    from simplepose.visualize import draw_people, draw_hud
    canvas = draw_people(image, predictor.predict(image), kpt_threshold=0.2)
    canvas = draw_hud(canvas, count=len(people), fps=12.3)
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence

import cv2
import numpy as np

from .errors import InputError
from .skeleton import COCO17, LAYOUTS, get_layout
from .utils.image import check_image

__all__ = [
    "KEYPOINT_COLORS",
    "LIMB_COLORS",
    "auto_thickness",
    "draw_hud",
    "draw_people",
    "layout_colors",
    "track_color",
]

LOG = logging.getLogger(__name__)


def layout_colors(layout) -> tuple[tuple, tuple]:
    """``(limb colours, keypoint colours)`` (BGR) of a layout: one colour per drawing-skeleton
    limb on a fixed hue wheel (a limb keeps its colour across frames and images); keypoint
    dots left blue-ish, right orange-ish, centre (face, head, trunk) green. COCO's face points
    (nose, eyes, ears) are all green."""
    return _layout_colors(get_layout(layout))


@functools.lru_cache(maxsize=32)
def _layout_colors(layout) -> tuple[tuple, tuple]:
    """:func:`layout_colors` of a resolved layout, cached: drawing asks for every person."""
    n = len(layout.skeleton)
    limbs = tuple(
        tuple(
            int(c)
            for c in cv2.cvtColor(np.uint8([[[int(180 * i / n), 230, 255]]]), cv2.COLOR_HSV2BGR)[
                0, 0
            ]
        )
        for i in range(n)
    )
    face = ("eye", "ear")
    dots = tuple(
        (0, 220, 0)
        if name.startswith("nose") or name.endswith(face) or not name.startswith(("left", "right"))
        else ((255, 128, 0) if name.startswith("left") else (0, 128, 255))
        for name in layout.keypoints
    )
    return limbs, dots


LIMB_COLORS, KEYPOINT_COLORS = layout_colors(COCO17)  # one per COCO17.skeleton limb / keypoint
_BOX_COLOR = (60, 220, 60)


@functools.lru_cache(maxsize=1024)
def track_color(track_id: int) -> tuple[int, int, int]:
    """A stable, saturated BGR colour for a track id (golden-ratio hue steps, so consecutive
    ids get clearly different colours; cached per id)."""
    hue = int(180 * ((int(track_id) * 0.618033988749895) % 1.0))
    return tuple(
        int(c) for c in cv2.cvtColor(np.uint8([[[hue, 220, 255]]]), cv2.COLOR_HSV2BGR)[0, 0]
    )


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
    layout=None,
    color_tracks: bool = True,
) -> np.ndarray:
    """Draw skeletons (one colour per limb), keypoint dots and optionally boxes.

    People with a ``track_id`` (:class:`~simplepose.tracking.TrackedPerson`) are drawn in
    their track's colour (:func:`track_color`) with the id written above their head, so a
    person keeps one colour over a video.

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
        color_tracks: colour tracked people by track id and label them (False: limb colours).

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
            raise InputError(
                f"draw_people: a person has {len(kpts)} keypoints, "
                f"the {lay.name} layout {lay.num_keypoints}"
            )
        limb_colors, dot_colors = layout_colors(lay)
        ok = (kpts[:, 2] >= kpt_threshold) & (kpts[:, 2] > 0) & np.isfinite(kpts).all(axis=1)
        # limit coordinates so cv2 never sees huge values (it draws nothing useful there anyway)
        pts = np.clip(np.nan_to_num(kpts[:, :2]), -4 * max(h, w), 4 * max(h, w))
        ipts = np.round(pts).astype(np.int64)
        track_id = getattr(person, "track_id", None) if color_tracks else None
        own = track_color(track_id) if track_id is not None else None
        if draw_boxes and getattr(person, "box", None) is not None:
            x1, y1, x2, y2 = np.round(np.asarray(person.box, dtype=np.float64)).astype(int)
            if x2 > x1 or y2 > y1:
                cv2.rectangle(
                    canvas, (x1, y1), (x2, y2), own or _BOX_COLOR, max(1, t // 2), cv2.LINE_AA
                )
        for (a, b), color in zip(lay.skeleton, limb_colors):
            if ok[a] and ok[b]:
                cv2.line(
                    canvas,
                    tuple(map(int, ipts[a])),
                    tuple(map(int, ipts[b])),
                    own or color,
                    t,
                    cv2.LINE_AA,
                )
        for k in np.flatnonzero(ok):
            cv2.circle(canvas, tuple(map(int, ipts[k])), radius, dot_colors[k], -1, cv2.LINE_AA)
        if own is not None and ok.any():
            _draw_label(canvas, str(int(track_id)), ipts[ok], own, t)
    return canvas


def _draw_label(canvas: np.ndarray, text: str, pts: np.ndarray, color, thickness: int) -> None:
    """The track id on a filled tag in the track's colour, above the person's top keypoint."""
    scale = max(0.4, thickness * 0.25)
    thick = max(1, thickness // 2)
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    x = int(np.clip(pts[:, 0].mean() - tw / 2, 0, max(canvas.shape[1] - tw - 4, 0)))
    y = int(np.clip(pts[:, 1].min() - 6, th + base + 2, canvas.shape[0] - 1))
    cv2.rectangle(canvas, (x, y - th - base - 2), (x + tw + 4, y), color, -1)
    cv2.putText(
        canvas,
        text,
        (x + 2, y - base),
        cv2.FONT_HERSHEY_SIMPLEX,
        scale,
        (0, 0, 0),
        thick,
        cv2.LINE_AA,
    )


def _layout_for(num_keypoints: int):
    for lay in LAYOUTS.values():
        if lay.num_keypoints == num_keypoints:
            return lay
    raise InputError(
        f"draw_people: no keypoint layout has {num_keypoints} keypoints "
        f"(registered: {', '.join(f'{n} {lay.num_keypoints}' for n, lay in LAYOUTS.items())})"
    )


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
