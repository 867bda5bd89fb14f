"""Numba-compiled twins of the bottom-up target renderers in :mod:`simplepose.codecs.render`.

Same signatures, same grid convention (cell ``i`` centred at input px
``stride * i + (stride - 1) / 2``), same windows and the same float64 arithmetic, so the
outputs equal the numpy versions to float32 rounding (tests check 1e-6). They exist because
the numpy renderers pay numpy's per-call overhead for every (person, joint) and
(person, limb) window -- about 15 ms per 512 x 512 SimplePose sample, the largest stage of
the training data pipeline -- while the compiled loops touch each window cell once.

:func:`encode_simplepose` reproduces :meth:`simplepose.codecs.bottomup.SimplePoseCodec.encode`
with these kernels. Without numba installed, every function falls back to the numpy
renderers (``HAVE_NUMBA`` tells which is used). The kernels are compiled on first use
(about a second; ``cache=True`` keeps the machine code in ``__pycache__``).
"""

from __future__ import annotations

import logging
import math

import numpy as np

from . import render as _np_render

__all__ = [
    "HAVE_NUMBA",
    "encode_simplepose",
    "render_keypoint_gaussians",
    "render_limb_gaussians",
]

LOG = logging.getLogger(__name__)

try:  # pragma: no cover - depends on the environment
    import numba

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover
    numba = None
    HAVE_NUMBA = False


def _cell_range(lo, hi, stride, size):
    """Inclusive cells whose centres lie in [lo, hi] input px, clipped (as render._cell_range)."""
    off = (stride - 1) / 2.0
    i0 = max(math.ceil((lo - off) / stride), 0)
    i1 = min(math.floor((hi - off) / stride), size - 1)
    return i0, i1


def _keypoints_kernel(joints, labelled, maps, stride, sigma, window_threshold):
    num_people, num_joints = joints.shape[0], joints.shape[1]
    h, w = maps.shape[1], maps.shape[2]
    radius = math.sqrt(-2.0 * sigma * sigma * math.log(window_threshold))
    off = (stride - 1) / 2.0
    inv = -1.0 / (2.0 * sigma * sigma)
    gx = np.empty(w, dtype=np.float64)
    gy = np.empty(h, dtype=np.float64)
    for n in range(num_people):
        for k in range(num_joints):
            if not labelled[n, k]:
                continue
            x = joints[n, k, 0]
            y = joints[n, k, 1]
            if not (math.isfinite(x) and math.isfinite(y)):
                continue
            x0, x1 = _cell_range(x - radius, x + radius, stride, w)
            y0, y1 = _cell_range(y - radius, y + radius, stride, h)
            if x0 > x1 or y0 > y1:
                continue
            for i in range(x0, x1 + 1):
                d = off + stride * i - x
                gx[i] = math.exp(inv * d * d)
            for j in range(y0, y1 + 1):
                d = off + stride * j - y
                gy[j] = math.exp(inv * d * d)
            for j in range(y0, y1 + 1):
                for i in range(x0, x1 + 1):
                    v = np.float32(gy[j] * gx[i])
                    maps[k, j, i] = max(maps[k, j, i], v)


def _limbs_kernel(joints, labelled, limbs, maps, acc, counts, stride, sigma, threshold, floor,
                  margin, use_mean):  # fmt: skip
    h, w = maps.shape[1], maps.shape[2]
    inv = -1.0 / (2.0 * sigma * sigma)
    off = (stride - 1) / 2.0
    # exp(e) <= threshold  <=>  e <= log(threshold): skip the exp far from the line. The
    # margin keeps cells within rounding of the boundary on the exact exp path.
    e_skip = math.log(threshold) - 1e-9 if threshold > 0.0 else -math.inf
    for k in range(limbs.shape[0]):
        a, b = limbs[k, 0], limbs[k, 1]
        for n in range(joints.shape[0]):
            if not (labelled[n, a] and labelled[n, b]):
                continue
            p1x, p1y = joints[n, a, 0], joints[n, a, 1]
            p2x, p2y = joints[n, b, 0], joints[n, b, 1]
            if not (math.isfinite(p1x) and math.isfinite(p1y) and math.isfinite(p2x)
                    and math.isfinite(p2y)):  # fmt: skip
                continue
            if p1x == p2x and p1y == p2y:
                continue
            x0, x1 = _cell_range(min(p1x, p2x) - margin, max(p1x, p2x) + margin, stride, w)
            y0, y1 = _cell_range(min(p1y, p2y) - margin, max(p1y, p2y) + margin, stride, h)
            if x0 > x1 or y0 > y1:
                continue
            dx, dy = p2x - p1x, p2y - p1y
            norm = math.hypot(dx, dy) + 1e-6
            for j in range(y0, y1 + 1):
                ys = off + stride * j
                for i in range(x0, x1 + 1):
                    xs = off + stride * i
                    dist = abs(dx * (ys - p1y) - dy * (xs - p1x)) / norm
                    e = inv * dist * dist
                    if e < e_skip:
                        g = floor
                    else:
                        g = math.exp(e)
                        if g <= threshold:
                            g = floor
                    if use_mean:
                        acc[k, j, i] += g
                        counts[k, j, i] += 1
                    else:
                        v = np.float32(g)
                        maps[k, j, i] = max(maps[k, j, i], v)


if HAVE_NUMBA:  # pragma: no branch
    _cell_range = numba.njit(cache=True, inline="always")(_cell_range)
    _keypoints_kernel = numba.njit(cache=True)(_keypoints_kernel)
    _limbs_kernel = numba.njit(cache=True)(_limbs_kernel)


def render_keypoint_gaussians(
    joints: np.ndarray,
    labelled: np.ndarray,
    out_hw: tuple[int, int],
    stride: int,
    sigma: float,
    window_threshold: float = 0.015,
) -> np.ndarray:
    """Keypoint heatmaps, people combined by max; see
    :func:`simplepose.codecs.render.render_keypoint_gaussians` (identical output).

    Args:
        joints: (N, K, 2) input px. labelled: (N, K) bool. out_hw: (H, W) cells.

    Returns:
        (K, H, W) float32 in [0, 1], heatmap px.
    """
    if not HAVE_NUMBA:
        return _np_render.render_keypoint_gaussians(joints, labelled, out_hw, stride, sigma,
                                                    window_threshold)  # fmt: skip
    joints = np.ascontiguousarray(joints, dtype=np.float64)
    labelled = np.ascontiguousarray(labelled, dtype=np.bool_)
    h, w = (int(v) for v in out_hw)
    maps = np.zeros((joints.shape[1], h, w), dtype=np.float32)
    if joints.shape[0]:
        _keypoints_kernel(joints, labelled, maps, float(stride), float(sigma),
                          float(window_threshold))  # fmt: skip
    return maps


def render_limb_gaussians(
    joints: np.ndarray,
    labelled: np.ndarray,
    limbs: np.ndarray,
    out_hw: tuple[int, int],
    stride: int,
    sigma: float,
    threshold: float = 0.015,
    floor: float = 0.0,
    margin: float | None = None,
    combine: str = "max",
) -> np.ndarray:
    """SimplePose limb response maps; see
    :func:`simplepose.codecs.render.render_limb_gaussians` (identical output).

    Args:
        joints: (N, K, 2) input px. labelled: (N, K) bool. limbs: (L, 2) part pairs.
        out_hw: (H, W) cells.

    Returns:
        (L, H, W) float32 in [0, 1], heatmap px.
    """
    if combine not in ("max", "mean"):
        raise ValueError(f"combine must be 'max' or 'mean', got {combine!r}")
    if not HAVE_NUMBA:
        return _np_render.render_limb_gaussians(joints, labelled, limbs, out_hw, stride, sigma,
                                                threshold, floor, margin, combine)  # fmt: skip
    h, w = (int(v) for v in out_hw)
    maps = np.zeros((len(np.asarray(limbs).reshape(-1, 2)), h, w), dtype=np.float32)
    _render_limbs_into(maps, joints, labelled, limbs, stride, sigma, threshold, floor, margin,
                       combine)  # fmt: skip
    return maps


def _render_limbs_into(maps, joints, labelled, limbs, stride, sigma, threshold, floor, margin,
                       combine):  # fmt: skip
    """Render into a zeroed (L, H, W) float32 array. "max" writes float32 maxima directly
    (rounding is monotonic, so this equals rounding the float64 maximum); "mean" accumulates
    in float64 like the numpy version."""
    margin = float(stride) if margin is None else float(margin)
    joints = np.ascontiguousarray(joints, dtype=np.float64)
    labelled = np.ascontiguousarray(labelled, dtype=np.bool_)
    limbs = np.ascontiguousarray(np.asarray(limbs).reshape(-1, 2), dtype=np.int64)
    use_mean = combine == "mean"
    shape = maps.shape if use_mean else (1, 1, 1)
    acc = np.zeros(shape, dtype=np.float64)
    counts = np.zeros(shape, dtype=np.int32)
    if joints.shape[0]:
        _limbs_kernel(joints, labelled, limbs, maps, acc, counts, float(stride), float(sigma),
                      float(threshold), float(floor), margin, use_mean)  # fmt: skip
    if use_mean:
        np.divide(acc, counts, out=acc, where=counts > 0)
        np.clip(acc, 0.0, 1.0, out=acc)
        maps[...] = acc
    elif not 0.0 <= floor <= 1.0:  # otherwise every value is already in [0, 1]
        np.clip(maps, 0.0, 1.0, out=maps)


def encode_simplepose(codec, joints: np.ndarray, out_hw, person_mask: np.ndarray | None = None):
    """:meth:`SimplePoseCodec.encode` with the compiled renderers (identical output).

    Args:
        codec: a :class:`simplepose.codecs.bottomup.SimplePoseCodec`.
        joints: (N, 18, 3) x, y in input px and internal visibility code.
        out_hw: (H, W) heatmap size in cells.
        person_mask: optional (H, W) eroded mask of all people for channel 48.

    Returns:
        (50, H, W) float32 in [0, 1], heatmap px.
    """
    from .bottomup import ABSENT  # local: bottomup imports the decoders

    layout = codec.layout
    joints = np.asarray(joints, dtype=np.float64).reshape(-1, layout.num_keypoints, 3)
    labelled = joints[..., 2] < ABSENT
    xy = joints[..., :2]
    h, w = (int(v) for v in out_hw)
    num_limbs = layout.num_limbs
    nk = layout.num_keypoints
    if not HAVE_NUMBA:
        return codec.encode(joints, (h, w), person_mask)
    out = np.zeros((num_limbs + nk + 2, h, w), dtype=np.float32)
    _render_limbs_into(out[:num_limbs], xy, labelled, layout.limbs_array, codec.stride,
                       codec.limb_sigma, codec.limb_threshold, codec.limb_floor, None,
                       codec.limb_combine)  # fmt: skip
    kp = out[num_limbs : num_limbs + nk]
    if joints.shape[0]:
        _keypoints_kernel(np.ascontiguousarray(xy), np.ascontiguousarray(labelled), kp,
                          float(codec.stride), float(codec.keypoint_sigma), 0.015)  # fmt: skip
    if person_mask is not None:
        np.clip(person_mask, 0.0, 1.0, out=out[num_limbs + nk])
    np.max(kp, axis=0, out=out[num_limbs + nk + 1])
    return out
