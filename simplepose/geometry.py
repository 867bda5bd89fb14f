"""Geometry shared by codecs, decoding, data and inference: frames, affines and boxes.

Nothing here knows about models, codecs or datasets; every package may import it.

Coordinate frames: **original px** (the full image), **input px** (the network input: a resized
and padded image bottom-up, a crop top-down) and **heatmap px** (cells of the stride-``s``
output maps). Pixel centres sit at integer coordinates.

* :func:`cell_offset`: the input-px centre of heatmap cell 0 (SPEC 2.3).
* :class:`BottomUpGeometry`: original px <-> input px <-> heatmap px of one bottom-up image at
  one inference scale (SPEC 3.8), with its inverse.
* Affines, as (2, 3) float64 matrices ``M`` with ``[x', y'] = M @ [x, y, 1]``:
  :func:`apply_affine`, :func:`invert_affine`, :func:`compose_affine`, :func:`hflip_matrix`.
* Boxes: :func:`xywh_to_xyxy`, :func:`xyxy_to_xywh` and :func:`box_iou`.

Bottom-up geometry: the image is resized so that its height becomes ``box_size *
scale_factor`` (capped at 2600 x 3800), padded right/bottom to a multiple of ``pad_multiple``,
and the network predicts maps at ``stride``. Original and input px use the
pixel-centre-at-integer convention of ``cv2.resize``: ``x_in = (x + 0.5) * sx - 0.5``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import InputError

__all__ = [
    "BottomUpGeometry",
    "apply_affine",
    "box_iou",
    "cell_offset",
    "compose_affine",
    "float_array",
    "hflip_matrix",
    "invert_affine",
    "xywh_to_xyxy",
    "xyxy_to_xywh",
]


def cell_offset(stride: int) -> float:
    """Input-px coordinate of the centre of heatmap cell 0: ``(stride - 1) / 2``.

    Heatmap cell ``i`` covers input px ``[s i, s i + s)`` and has its centre at
    ``s i + (s - 1) / 2`` (``4i + 1.5`` at stride 4), matching ``cv2.resize``'s half-pixel
    alignment (SPEC 2.3).
    """
    return (stride - 1) / 2.0


def float_array(x, name: str, last: int | None = None) -> np.ndarray:
    """``x`` as a float64 array; with ``last``, its last axis must have that size.

    Raises:
        InputError: naming ``name``, when the last axis has another size.
    """
    a = np.asarray(x, dtype=np.float64)
    if last is not None and (a.ndim == 0 or a.shape[-1] != last):
        raise InputError(f"{name} must have a last axis of size {last}, got shape {a.shape}")
    return a


# ------------------------------------------------------------------------ bottom-up frames
@dataclass(frozen=True)
class BottomUpGeometry:
    """Frames of one image at one inference scale.

    Attributes:
        orig_w, orig_h: original image size (px).
        in_w, in_h: resized image size before padding (input px).
        pad_w, pad_h: padded network input size (input px).
        stride: input px per heatmap cell.
    """

    orig_w: int
    orig_h: int
    in_w: int
    in_h: int
    pad_w: int
    pad_h: int
    stride: int = 4

    @classmethod
    def for_image(
        cls,
        orig_w: int,
        orig_h: int,
        box_size: int = 512,
        scale_factor: float = 1.0,
        stride: int = 4,
        pad_multiple: int = 64,
        max_h: int = 2600,
        max_w: int = 3800,
    ) -> BottomUpGeometry:
        if orig_w < 1 or orig_h < 1:
            raise InputError(f"image size must be positive, got {orig_w}x{orig_h}")
        scale = scale_factor * box_size / orig_h
        if scale * orig_h > max_h or scale * orig_w > max_w:
            scale = min(max_h / orig_h, max_w / orig_w)
        in_w = max(int(round(orig_w * scale)), 1)
        in_h = max(int(round(orig_h * scale)), 1)
        pad_w = -(-in_w // pad_multiple) * pad_multiple
        pad_h = -(-in_h // pad_multiple) * pad_multiple
        return cls(orig_w, orig_h, in_w, in_h, pad_w, pad_h, stride)

    @property
    def scale_x(self) -> float:
        """Input px per original px along x."""
        return self.in_w / self.orig_w

    @property
    def scale_y(self) -> float:
        """Input px per original px along y."""
        return self.in_h / self.orig_h

    @property
    def heatmap_hw(self) -> tuple[int, int]:
        """(H, W) of the stride-s output maps of the padded input."""
        return self.pad_h // self.stride, self.pad_w // self.stride

    @property
    def valid_heatmap_hw(self) -> tuple[int, int]:
        """(H, W) of the heatmap cells that overlap the resized image (the rest is padding)."""
        return -(-self.in_h // self.stride), -(-self.in_w // self.stride)

    @property
    def heatmap_to_original_scale(self) -> tuple[float, float]:
        """Original px per heatmap px along x and y (for limb lengths)."""
        return self.stride / self.scale_x, self.stride / self.scale_y

    def original_to_input(self, xy: np.ndarray) -> np.ndarray:
        """(..., 2) original px -> input px."""
        xy = np.asarray(xy, dtype=np.float64)
        s = np.array([self.scale_x, self.scale_y])
        return (xy + 0.5) * s - 0.5

    def input_to_original(self, xy: np.ndarray) -> np.ndarray:
        """(..., 2) input px -> original px (inverse of :meth:`original_to_input`)."""
        xy = np.asarray(xy, dtype=np.float64)
        s = np.array([self.scale_x, self.scale_y])
        return (xy + 0.5) / s - 0.5

    def heatmap_to_original(self, xy: np.ndarray) -> np.ndarray:
        """(..., 2) heatmap px -> original px."""
        xy = np.asarray(xy, dtype=np.float64)
        return self.input_to_original(xy * self.stride + cell_offset(self.stride))

    def original_to_heatmap(self, xy: np.ndarray) -> np.ndarray:
        """(..., 2) original px -> heatmap px (inverse of :meth:`heatmap_to_original`)."""
        return (self.original_to_input(xy) - cell_offset(self.stride)) / self.stride

    def original_to_input_matrix(self) -> np.ndarray:
        """(2, 3) affine original px -> input px (for cv2.warpAffine of masks)."""
        sx, sy = self.scale_x, self.scale_y
        return np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5]])


# ------------------------------------------------------------------------------ affines
def invert_affine(matrix) -> np.ndarray:
    """Inverse of a (2, 3) (or (N, 2, 3)) affine matrix."""
    m = float_array(matrix, "matrix", 3)
    if m.shape[-2:] != (2, 3):
        raise InputError(f"affine matrix must be (..., 2, 3), got {m.shape}")
    a = m[..., :2]
    det = a[..., 0, 0] * a[..., 1, 1] - a[..., 0, 1] * a[..., 1, 0]
    if np.any(np.abs(det) < 1e-300):
        raise InputError("affine matrix is singular")
    ainv = np.stack(
        [np.stack([a[..., 1, 1], -a[..., 0, 1]], -1), np.stack([-a[..., 1, 0], a[..., 0, 0]], -1)],
        axis=-2,
    ) / det[..., None, None]
    t = -np.einsum("...ij,...j->...i", ainv, m[..., 2])
    return np.concatenate([ainv, t[..., None]], axis=-1)


def compose_affine(outer, inner) -> np.ndarray:
    """(2, 3) matrix of ``outer(inner(p))``."""
    o = float_array(outer, "outer", 3)
    i = float_array(inner, "inner", 3)
    a = o[:, :2] @ i[:, :2]
    t = o[:, :2] @ i[:, 2] + o[:, 2]
    return np.concatenate([a, t[:, None]], axis=1)


def hflip_matrix(image_width: int) -> np.ndarray:
    """(2, 3) horizontal flip of an image ``image_width`` px wide: ``x' = W - 1 - x``."""
    return np.array([[-1.0, 0.0, image_width - 1.0], [0.0, 1.0, 0.0]])


def apply_affine(points, matrix) -> np.ndarray:
    """Apply a (2, 3) affine to (..., 2) points; (N, 2, 3) matrices apply per leading index.

    Returns (..., 2) float64 points in the matrix's destination frame. Non-finite points stay
    non-finite.

    Raises:
        InputError: the points have no last axis of 2, or the matrices do not fit them.
    """
    p = float_array(points, "points", 2)
    m = float_array(matrix, "matrix", 3)
    if m.shape == (2, 3):
        return p @ m[:, :2].T + m[:, 2]
    if m.ndim == 3 and m.shape[1:] == (2, 3) and p.ndim >= 2 and p.shape[0] == m.shape[0]:
        flat = p.reshape(p.shape[0], -1, 2)
        out = np.einsum("nij,nkj->nki", m[:, :, :2], flat) + m[:, None, :, 2]
        return out.reshape(p.shape)
    raise InputError(f"apply_affine: matrix {m.shape} does not fit points {p.shape}")


# -------------------------------------------------------------------------------- boxes
def xywh_to_xyxy(boxes) -> np.ndarray:
    """(N, 4) ``(x, y, w, h)`` -> (N, 4) float64 ``(x1, y1, x2, y2)``, same px frame."""
    b = float_array(boxes, "boxes", 4).reshape(-1, 4)
    return np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], axis=1)


def xyxy_to_xywh(boxes) -> np.ndarray:
    """(N, 4) ``(x1, y1, x2, y2)`` -> (N, 4) float64 ``(x, y, w, h)``, same px frame."""
    b = float_array(boxes, "boxes", 4).reshape(-1, 4)
    return np.concatenate([b[:, :2], b[:, 2:] - b[:, :2]], axis=1)


def box_iou(a, b) -> np.ndarray:
    """Pairwise intersection over union of (N, 4) and (M, 4) ``(x1, y1, x2, y2)`` boxes.

    Boxes are continuous (width ``x2 - x1``); an empty or inverted box has area 0 and IoU 0
    with everything.

    Returns:
        (N, M) float64 IoU in [0, 1].
    """
    a = float_array(a, "boxes a", 4).reshape(-1, 4)
    b = float_array(b, "boxes b", 4).reshape(-1, 4)
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
