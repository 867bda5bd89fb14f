"""Bottom-up inference geometry (SPEC 3.8): original px <-> network input px <-> heatmap px.

The image is resized so that its height becomes ``box_size * scale_factor`` (capped at
2600 x 3800), padded right/bottom to a multiple of ``pad_multiple``, and the network
predicts maps at ``stride``. Original and input px use the pixel-centre-at-integer
convention of ``cv2.resize``: ``x_in = (x + 0.5) * sx - 0.5``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..codecs.render import cell_offset
from ..errors import InputError

__all__ = ["BottomUpGeometry"]


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
    ) -> "BottomUpGeometry":
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
        xy = np.asarray(xy, dtype=np.float64)
        s = np.array([self.scale_x, self.scale_y])
        return (xy + 0.5) / s - 0.5

    def heatmap_to_original(self, xy: np.ndarray) -> np.ndarray:
        """(..., 2) heatmap px -> original px."""
        xy = np.asarray(xy, dtype=np.float64)
        return self.input_to_original(xy * self.stride + cell_offset(self.stride))

    def original_to_input_matrix(self) -> np.ndarray:
        """(2, 3) affine original px -> input px (for cv2.warpAffine of masks)."""
        sx, sy = self.scale_x, self.scale_y
        return np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5]])
