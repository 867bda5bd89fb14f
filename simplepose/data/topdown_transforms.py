"""Geometry of top-down pose estimation: boxes -> crops and back (SPEC 4.1, 4.6, 5.1, 5.6).

Coordinate frames:

* **original px**: the full image, ``(x, y)`` with ``x`` to the right and ``y`` down;
* **input px**: the network input crop of size ``output_size = (W_in, H_in)``.

Every transform here returns (or is) a 2 x 3 affine matrix from original px to input px, so
predictions are mapped back with its inverse (:func:`invert_affine`, or
``get_affine_transform(..., inv=True)``) instead of re-deriving the crop at decode time.

Box parametrisation (MSPN style): a box ``(x, y, w, h)`` becomes a centre and a *scale in
pixels* ``(s_w, s_h)`` (the references store ``s / 200``; here the 200 is folded in). The scale is
extended by a padding factor and its aspect ratio fixed to ``W_in / H_in`` by enlarging the short
side. The affine maps the centre to the crop centre and ``s_w`` pixels onto ``W_in``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from simplepose.errors import InputError
from simplepose.geometry import apply_affine, compose_affine, float_array, hflip_matrix, invert_affine
from simplepose.skeleton import COCO17

LOG = logging.getLogger(__name__)

__all__ = [
    "MSPN_TEST_PADDING",
    "MSPN_TRAIN_PADDING",
    "CPN_TEST_PADDING",
    "UPPER_BODY_IDS",
    "box_to_center_scale",
    "fix_aspect_ratio",
    "get_affine_transform",
    "warp_image",
    "half_body_center_scale",
    "TopDownAugParams",
    "sample_topdown_aug",
    "topdown_affine",
    "transform_keypoints",
    "sanitize_boxes",
]

MSPN_TEST_PADDING = (1.09, 1.135)  # SPEC 5.1 test extension (w, h)
MSPN_TRAIN_PADDING = (1.05, 1.05)  # SPEC 5.1 BASIC_EXTENTION before the random extension
CPN_TEST_PADDING = (1.2, 1.3)  # SPEC 4.1: 0.1 / 0.15 of the box added on every side
UPPER_BODY_IDS = COCO17.upper_body  # COCO 0..12; hips count as upper body (SPEC 5.1)


def fix_aspect_ratio(scale: np.ndarray, aspect_ratio: float) -> np.ndarray:
    """Enlarge the short side so that ``s_w / s_h == aspect_ratio`` (= W_in / H_in).

    ``scale``: (..., 2) (s_w, s_h) in original px. Returns a new (..., 2) array.
    """
    s = float_array(scale, "scale", 2).copy()
    wide = s[..., 0] > aspect_ratio * s[..., 1]
    s[..., 1] = np.where(wide, s[..., 0] / aspect_ratio, s[..., 1])
    s[..., 0] = np.where(wide, s[..., 0], s[..., 1] * aspect_ratio)
    return s


def box_to_center_scale(
    boxes_xywh,
    aspect_ratio: float,
    padding=MSPN_TEST_PADDING,
) -> tuple[np.ndarray, np.ndarray]:
    """Boxes -> centre and aspect-fixed, padded scale (MSPN ``_bbox_to_center_and_scale``).

    Args:
        boxes_xywh: (N, 4) or (4,) boxes ``(x, y, w, h)`` in original px.
        aspect_ratio: ``W_in / H_in`` of the network input (0.75 for 192 x 256).
        padding: scalar or ``(f_w, f_h)`` multiplying the box size before the aspect fix;
            :data:`MSPN_TEST_PADDING` (1.09, 1.135) by default, :data:`CPN_TEST_PADDING` for
            CPN's 0.1 / 0.15 border per side.

    Returns:
        centers: (N, 2) or (2,) ``(c_x, c_y)`` in original px (the box centre ``x + w / 2``).
        scales: (N, 2) or (2,) ``(s_w, s_h)`` in original px, ``s_w / s_h == aspect_ratio``.
    """
    b = float_array(boxes_xywh, "boxes_xywh", 4)
    pad = np.broadcast_to(np.asarray(padding, dtype=np.float64), (2,))
    centers = np.stack([b[..., 0] + b[..., 2] / 2.0, b[..., 1] + b[..., 3] / 2.0], axis=-1)
    scales = fix_aspect_ratio(b[..., 2:4] * pad, aspect_ratio)
    return centers, scales


def get_affine_transform(center, scale, rot: float, output_size, inv: bool = False) -> np.ndarray:
    """The similarity that crops ``scale`` around ``center`` into an ``output_size`` image.

    Equivalent to the three-point construction of MSPN / HRNet ``get_affine_transform``
    (centre -> output centre ``(W/2, H/2)``, ``s_w`` px -> ``W`` px, rotation by ``rot``
    degrees, counter-clockwise on screen for positive ``rot``), but computed in closed form in
    float64.

    Args:
        center: (2,) ``(c_x, c_y)`` in original px.
        scale: (2,) ``(s_w, s_h)`` in original px (only ``s_w`` sets the zoom; the aspect is
            assumed fixed to the output's), or a scalar width.
        rot: rotation in degrees.
        output_size: ``(W_in, H_in)``, width first as in ``cv2`` sizes.
        inv: return the inverse map (input px -> original px).

    Returns:
        (2, 3) float64 matrix ``M`` with ``[x_in, y_in] = M @ [x, y, 1]`` (or the inverse).
    """
    c = float_array(center, "center", 2)
    s = np.asarray(scale, dtype=np.float64).reshape(-1)
    w_out, h_out = (float(v) for v in output_size)
    src_w = float(s[0])
    if not (np.isfinite(c).all() and np.isfinite(src_w) and src_w > 0 and w_out > 0 and h_out > 0):
        raise InputError(
            f"get_affine_transform: need finite center, positive scale and output size; "
            f"got center={c.tolist()}, scale={s.tolist()}, output_size={output_size}"
        )
    theta = np.deg2rad(float(rot))
    k = w_out / src_w
    cs, sn = np.cos(theta), np.sin(theta)
    # The source "up" vector rotated by +rot maps onto the output's "up": R(-rot) scaled by k.
    a = k * np.array([[cs, sn], [-sn, cs]])
    t = np.array([w_out / 2.0, h_out / 2.0]) - a @ c
    m = np.concatenate([a, t[:, None]], axis=1)
    return invert_affine(m) if inv else m


def warp_image(
    image: np.ndarray,
    matrix,
    output_size,
    interpolation: int | None = None,
    border_value=0,
) -> np.ndarray:
    """Warp an image with a (2, 3) original px -> input px matrix (``cv2.warpAffine``).

    ``output_size`` is ``(W_in, H_in)``; bilinear with a constant border by default (MSPN).
    Returns an (H_in, W_in[, C]) array of the input's dtype.
    """
    import cv2  # lazy: keeps importing this module cheap

    if not isinstance(image, np.ndarray) or image.size == 0 or image.ndim not in (2, 3):
        got = image.shape if isinstance(image, np.ndarray) else type(image).__name__
        raise InputError(f"warp_image: need a non-empty (H, W[, C]) array, got {got}")
    w, h = (int(v) for v in output_size)
    flags = cv2.INTER_LINEAR if interpolation is None else interpolation
    return cv2.warpAffine(
        image, np.asarray(matrix, dtype=np.float64), (w, h), flags=flags,
        borderMode=cv2.BORDER_CONSTANT, borderValue=border_value,
    )  # fmt: skip


def half_body_center_scale(
    keypoints,
    visible,
    aspect_ratio: float,
    rng: np.random.Generator,
    upper_ids=UPPER_BODY_IDS,
    upper_prob: float = 0.5,
    x_ext: float = 0.6,
    y_ext: float = 0.8,
    min_keypoints: int = 3,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Half-body augmentation (MSPN ``_half_body_transform``, SPEC 5.1).

    Picks the upper body (ids ``upper_ids``; hips included) with probability ``upper_prob`` when
    it has more than 3 labelled keypoints, else the lower body if it has more than 3, else the
    upper body. The reference draws ``randn() < 0.5`` (P = 0.69); pass ``upper_prob=0.6915`` for
    parity.

    Args:
        keypoints: (K, 2) in original px; visible: (K,) flags, > 0 = labelled.
        aspect_ratio: ``W_in / H_in``.
        rng: numpy Generator.

    Returns:
        ``(center (2,), scale (2,))`` in original px (centre = mean of the chosen keypoints,
        scale = their bounding box, randomly extended by ``1 + U * x_ext`` / ``1 + U * y_ext``
        and aspect-fixed), or ``None`` when fewer than ``min_keypoints`` are available.
    """
    kp = float_array(keypoints, "keypoints", 2)
    vis = np.asarray(visible).reshape(-1)
    labelled = (vis > 0) & np.isfinite(kp).all(axis=1)
    upper_mask = np.zeros(kp.shape[0], dtype=bool)
    upper_mask[[i for i in upper_ids if i < kp.shape[0]]] = True
    upper = kp[labelled & upper_mask]
    lower = kp[labelled & ~upper_mask]
    if rng.random() < upper_prob and len(upper) > 3:
        chosen = upper
    else:
        chosen = lower if len(lower) > 3 else upper
    if len(chosen) < min_keypoints:
        return None
    center = chosen.mean(axis=0)
    size = chosen.max(axis=0) - chosen.min(axis=0)
    size = size * np.array([1.0 + rng.random() * x_ext, 1.0 + rng.random() * y_ext])
    return center, fix_aspect_ratio(size, aspect_ratio)


@dataclass(frozen=True)
class TopDownAugParams:
    """Random top-down augmentation of one sample (SPEC 5.1 steps 2-4).

    Attributes:
        scale_mult: multiplier of the (s_w, s_h) scale.
        rotation: degrees.
        flip: horizontal flip of the source image.
    """

    scale_mult: float = 1.0
    rotation: float = 0.0
    flip: bool = False


def sample_topdown_aug(
    rng: np.random.Generator,
    scale_factor: float = 0.25,
    scale_shrink: float = 0.8,
    rot_factor: float = 45.0,
    rot_prob: float = 0.5,
    flip_prob: float = 0.5,
) -> TopDownAugParams:
    """Draw MSPN's training augmentation: ``scale_shrink * U(1 - sf, 1 + sf)``, with probability
    ``rot_prob`` a rotation ``U(-rot_factor, rot_factor)``, with probability ``flip_prob`` a
    flip."""
    scale = scale_shrink * rng.uniform(1.0 - scale_factor, 1.0 + scale_factor)
    rot = rng.uniform(-rot_factor, rot_factor) if rng.random() < rot_prob else 0.0
    flip = bool(rng.random() < flip_prob)
    return TopDownAugParams(float(scale), float(rot), flip)


def topdown_affine(
    center,
    scale,
    params: TopDownAugParams,
    output_size,
    image_width: int,
) -> np.ndarray:
    """(2, 3) original px -> input px matrix of a (possibly flipped) augmented crop.

    A flip is folded into the matrix: the crop of the mirrored image around the mirrored centre
    ``W - 1 - c_x`` (as MSPN does) equals this matrix applied to the unmirrored image. The
    caller must still swap the L/R keypoint channels (:func:`transform_keypoints` does).
    """
    c = float_array(center, "center", 2)
    s = float_array(scale, "scale", 2) * params.scale_mult
    if params.flip:
        cf = np.array([image_width - 1.0 - c[0], c[1]])
        crop = get_affine_transform(cf, s, params.rotation, output_size)
        return compose_affine(crop, hflip_matrix(image_width))
    return get_affine_transform(c, s, params.rotation, output_size)


def transform_keypoints(
    keypoints,
    visible,
    matrix,
    output_size,
    flip_index=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Map keypoints into the crop and invalidate those that leave it.

    Args:
        keypoints: (K, 2) original px; visible: (K,) flags.
        matrix: (2, 3) original px -> input px.
        output_size: (W_in, H_in).
        flip_index: keypoint permutation to apply when ``matrix`` contains a flip (pass
            ``COCO_FLIP_INDEX`` then), else ``None``.

    Returns:
        ``(keypoints (K, 2) input px, visible (K,))``; keypoints outside
        ``[0, W_in - 1] x [0, H_in - 1]`` or non-finite get visibility 0 (SPEC 5.1 step 6).
    """
    kp = apply_affine(keypoints, matrix)
    vis = np.asarray(visible, dtype=np.float64).reshape(-1).copy()
    if flip_index is not None:
        idx = list(flip_index)
        kp, vis = kp[idx], vis[idx]
    w, h = output_size
    with np.errstate(invalid="ignore"):
        inside = (kp[:, 0] >= 0) & (kp[:, 0] <= w - 1) & (kp[:, 1] >= 0) & (kp[:, 1] <= h - 1)
    vis[~(inside & np.isfinite(kp).all(axis=1))] = 0
    return kp, vis


def sanitize_boxes(
    boxes_xywh,
    scores=None,
    image_size=None,
    clip: bool = False,
    min_size: float = 1.0,
) -> tuple[np.ndarray, np.ndarray | None, int]:
    """Drop unusable detector / annotation boxes instead of crashing on them later.

    Dropped: boxes with a non-finite coordinate or score, width or height <= 0, or (when
    ``image_size`` is given) no overlap with the image ``[0, W) x [0, H)``. With ``clip`` (needs
    ``image_size``) the kept boxes are clipped to ``[0, W] x [0, H]`` and those narrower or
    shorter than ``min_size`` px afterwards are dropped too. Logs one warning with the count
    when anything is dropped.

    Args:
        boxes_xywh: (N, 4) ``(x, y, w, h)`` in original px (an empty list is fine).
        scores: optional (N,) scores.
        image_size: optional ``(W, H)`` of the image, width first.
        clip: clip the boxes to the image (inference: a box far beyond the image would give a
            crop of mostly padding and keypoints outside the image).
        min_size: smallest kept side after clipping (px).

    Returns:
        ``(boxes (M, 4) float64, scores (M,) float64 or None, n_dropped)``.
    """
    b = np.asarray(boxes_xywh, dtype=np.float64)
    if b.size == 0:
        b = b.reshape(0, 4)
    if b.ndim != 2 or b.shape[1] != 4:
        raise InputError(f"sanitize_boxes: boxes must be (N, 4) (x, y, w, h), got shape {b.shape}")
    s = None
    if scores is not None:
        s = np.asarray(scores, dtype=np.float64).reshape(-1)
        if s.shape[0] != b.shape[0]:
            raise InputError(f"sanitize_boxes: {b.shape[0]} boxes but {s.shape[0]} scores")
    keep = np.isfinite(b).all(axis=1)
    if s is not None:
        keep &= np.isfinite(s)
    with np.errstate(invalid="ignore"):
        keep &= (b[:, 2] > 0) & (b[:, 3] > 0)
        if image_size is not None:
            w, h = (float(v) for v in image_size)
            keep &= (b[:, 0] < w) & (b[:, 1] < h)
            keep &= (b[:, 0] + b[:, 2] > 0) & (b[:, 1] + b[:, 3] > 0)
    if clip:
        if image_size is None:
            raise InputError("sanitize_boxes: clip=True needs image_size")
        b = b.copy()
        x1 = np.clip(b[:, 0], 0.0, w)
        y1 = np.clip(b[:, 1], 0.0, h)
        with np.errstate(invalid="ignore"):
            b[:, 2] = np.clip(b[:, 0] + b[:, 2], 0.0, w) - x1
            b[:, 3] = np.clip(b[:, 1] + b[:, 3], 0.0, h) - y1
            b[:, 0], b[:, 1] = x1, y1
            keep &= (b[:, 2] >= min_size) & (b[:, 3] >= min_size)
    n_dropped = int((~keep).sum())
    if n_dropped:
        LOG.warning(
            "sanitize_boxes: dropped %d of %d boxes (non-finite, empty or outside the image)",
            n_dropped, b.shape[0],
        )  # fmt: skip
    return b[keep], (s[keep] if s is not None else None), n_dropped
