"""Vectorised renderers of bottom-up training targets on a stride-``s`` grid.

Grid convention (SPEC 2.3): heatmap cell ``i`` has its centre at input px
``x = s * i + (s - 1) / 2`` (``4i + 1.5`` at stride 4), the centre of the ``s`` input pixels
it covers. This matches ``cv2.resize``'s half-pixel alignment, so the inverse map
``u = (x - (s - 1) / 2) / s`` needs no other offset. All loops run over people and limbs,
never over pixels: each item fills a window with one numpy expression.
"""

from __future__ import annotations

import math

import numpy as np

from ..geometry import cell_offset

__all__ = [
    "render_keypoint_gaussians",
    "render_limb_gaussians",
    "render_pafs",
]


def _cell_range(lo: float, hi: float, stride: int, size: int) -> tuple[int, int]:
    """Inclusive range of cells whose centres lie in [lo, hi] input px, clipped to the map."""
    off = cell_offset(stride)
    i0 = max(math.ceil((lo - off) / stride), 0)
    i1 = min(math.floor((hi - off) / stride), size - 1)
    return i0, i1


def render_keypoint_gaussians(
    joints: np.ndarray,
    labelled: np.ndarray,
    out_hw: tuple[int, int],
    stride: int,
    sigma: float,
    window_threshold: float = 0.015,
) -> np.ndarray:
    """Keypoint heatmaps: a Gaussian per labelled joint, people combined by max.

    Args:
        joints: (N, K, 2) joint positions in input px.
        labelled: (N, K) bool, which joints to render.
        out_hw: (H, W) heatmap size in cells.
        stride: input px per cell.
        sigma: Gaussian sigma in input px.
        window_threshold: the Gaussian is evaluated within the radius where it falls to this
            value (values are not clipped to it).

    Returns:
        (K, H, W) float32 in [0, 1].
    """
    h, w = out_hw
    num_people, num_joints = joints.shape[:2]
    maps = np.zeros((num_joints, h, w), dtype=np.float32)
    radius = math.sqrt(-2.0 * sigma * sigma * math.log(window_threshold))  # input px
    off = cell_offset(stride)
    inv = -1.0 / (2.0 * sigma * sigma)
    for n in range(num_people):
        for k in range(num_joints):
            if not labelled[n, k]:
                continue
            x, y = float(joints[n, k, 0]), float(joints[n, k, 1])
            if not (math.isfinite(x) and math.isfinite(y)):
                continue
            x0, x1 = _cell_range(x - radius, x + radius, stride, w)
            y0, y1 = _cell_range(y - radius, y + radius, stride, h)
            if x0 > x1 or y0 > y1:
                continue
            gx = np.exp(inv * (off + stride * np.arange(x0, x1 + 1) - x) ** 2)
            gy = np.exp(inv * (off + stride * np.arange(y0, y1 + 1) - y) ** 2)
            window = maps[k, y0 : y1 + 1, x0 : x1 + 1]
            np.maximum(window, (gy[:, None] * gx[None, :]).astype(np.float32), out=window)
    return maps


def _limb_window(p1, p2, margin, stride, out_hw):
    """Cells of the endpoints' bounding box grown by ``margin`` input px, and their centres."""
    h, w = out_hw
    x0, x1 = _cell_range(min(p1[0], p2[0]) - margin, max(p1[0], p2[0]) + margin, stride, w)
    y0, y1 = _cell_range(min(p1[1], p2[1]) - margin, max(p1[1], p2[1]) + margin, stride, h)
    if x0 > x1 or y0 > y1:
        return None
    off = cell_offset(stride)
    xs = off + stride * np.arange(x0, x1 + 1, dtype=np.float64)
    ys = off + stride * np.arange(y0, y1 + 1, dtype=np.float64)
    return (slice(y0, y1 + 1), slice(x0, x1 + 1)), xs[None, :], ys[:, None]


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
    """SimplePose limb "Gaussian response" maps (SPEC 3.4).

    For each limb whose endpoints are both labelled and distinct, every cell whose centre
    lies in the endpoints' bounding box grown by ``margin`` gets
    ``exp(-d^2 / (2 sigma^2))``, d = distance to the infinite line through the endpoints;
    values ``<= threshold`` become ``floor``.

    Args:
        joints: (N, K, 2) input px. labelled: (N, K) bool. limbs: (L, 2) part pairs.
        out_hw: (H, W) cells. stride: input px per cell. sigma: input px.
        floor: value of cells under the threshold inside the box. The reference uses 0.01
            [QUIRK]; the clean default 0 leaves no false "positives" for the focal loss.
        margin: box growth in input px (reference: one stride).
        combine: ``"max"`` (clean default) or ``"mean"`` (reference: average over the
            people whose box covers the cell).

    Returns:
        (L, H, W) float32 in [0, 1].
    """
    if combine not in ("max", "mean"):
        raise ValueError(f"combine must be 'max' or 'mean', got {combine!r}")
    margin = float(stride) if margin is None else margin
    h, w = out_hw
    num_limbs = len(limbs)
    maps = np.zeros((num_limbs, h, w), dtype=np.float64)
    counts = np.zeros((num_limbs, h, w), dtype=np.int32) if combine == "mean" else None
    inv = -1.0 / (2.0 * sigma * sigma)
    for k, (a, b) in enumerate(np.asarray(limbs).tolist()):
        for n in range(joints.shape[0]):
            if not (labelled[n, a] and labelled[n, b]):
                continue
            p1, p2 = joints[n, a].astype(np.float64), joints[n, b].astype(np.float64)
            if not (np.all(np.isfinite(p1)) and np.all(np.isfinite(p2))) or np.array_equal(p1, p2):
                continue
            win = _limb_window(p1, p2, margin, stride, out_hw)
            if win is None:
                continue
            sl, xs, ys = win
            d = p2 - p1
            cross = np.abs(d[0] * (ys - p1[1]) - d[1] * (xs - p1[0]))
            dist = cross / (math.hypot(d[0], d[1]) + 1e-6)
            g = np.exp(inv * dist * dist)
            g[g <= threshold] = floor
            if combine == "max":
                np.maximum(maps[k][sl], g, out=maps[k][sl])
            else:
                maps[k][sl] += g
                counts[k][sl] += 1
    if combine == "mean":
        np.divide(maps, counts, out=maps, where=counts > 0)
    return np.clip(maps, 0.0, 1.0).astype(np.float32)


def render_pafs(
    joints: np.ndarray,
    labelled: np.ndarray,
    limbs: np.ndarray,
    out_hw: tuple[int, int],
    stride: int,
    width: float,
) -> np.ndarray:
    """OpenPose part affinity fields: the unit limb vector on cells within ``width`` input px
    of the segment, averaged over the people that cover a cell.

    Args:
        joints: (N, K, 2) input px. labelled: (N, K) bool. limbs: (L, 2) part pairs.
        out_hw: (H, W) cells. stride: input px per cell. width: half-width in input px.

    Returns:
        (L, 2, H, W) float32: x then y component per limb.
    """
    h, w = out_hw
    num_limbs = len(limbs)
    fields = np.zeros((num_limbs, 2, h, w), dtype=np.float64)
    counts = np.zeros((num_limbs, h, w), dtype=np.int32)
    for k, (a, b) in enumerate(np.asarray(limbs).tolist()):
        for n in range(joints.shape[0]):
            if not (labelled[n, a] and labelled[n, b]):
                continue
            p1, p2 = joints[n, a].astype(np.float64), joints[n, b].astype(np.float64)
            length = math.hypot(*(p2 - p1))
            if not math.isfinite(length) or length < 1e-6:
                continue
            win = _limb_window(p1, p2, width, stride, out_hw)
            if win is None:
                continue
            sl, xs, ys = win
            ux, uy = (p2 - p1) / length
            rx, ry = xs - p1[0], ys - p1[1]
            along = rx * ux + ry * uy
            across = np.abs(rx * uy - ry * ux)
            on = (along >= -width) & (along <= length + width) & (across <= width)
            fields[k, 0][sl] += np.where(on, ux, 0.0)
            fields[k, 1][sl] += np.where(on, uy, 0.0)
            counts[k][sl] += on
    np.divide(fields, counts[:, None], out=fields, where=counts[:, None] > 0)
    return fields.astype(np.float32)
