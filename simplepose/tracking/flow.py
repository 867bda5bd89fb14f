"""Sparse optical flow for keypoints: OpenCV's pyramidal Lucas-Kanade with a
forward-backward check.

    prev = FlowFrame.from_image(frame0)
    nxt = FlowFrame.from_image(frame1)
    points1, ok = propagate_points(prev, nxt, points0)     # (N, 2) px, (N,) bool

Each frame is converted to grey once (:class:`FlowFrame`) and reused by every call that
involves it (forward and backward passes, keyframe corrections). OpenCV's Python binding
cannot take prebuilt pyramids, so each call builds its own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import InputError

__all__ = [
    "FlowFrame",
    "FlowParams",
    "estimate_camera_motion",
    "propagate_keypoints",
    "propagate_points",
]

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class FlowParams:
    """Lucas-Kanade settings.

    Attributes:
        win_size: side of the square search window in px at each pyramid level.
        max_level: pyramid levels above the base (each halves the size; 3 follows motions
            of about 8 x ``win_size`` / 2 px).
        fb_threshold: a point is kept when tracking it forward then backward lands within
            this many px of where it started (0 disables the check).
        max_iterations, epsilon: the iterative solver's stop criteria.
    """

    win_size: int = 21
    max_level: int = 3
    fb_threshold: float = 1.5
    max_iterations: int = 20
    epsilon: float = 0.03

    def __post_init__(self):
        if not isinstance(self.win_size, int) or self.win_size < 3:
            raise InputError(f"FlowParams.win_size must be an integer >= 3, got {self.win_size!r}")
        if not isinstance(self.max_level, int) or not 0 <= self.max_level <= 8:
            raise InputError(
                f"FlowParams.max_level must be an integer in [0, 8], got {self.max_level!r}"
            )
        if not (np.isfinite(self.fb_threshold) and self.fb_threshold >= 0):
            raise InputError(f"FlowParams.fb_threshold must be >= 0 px, got {self.fb_threshold!r}")
        if not isinstance(self.max_iterations, int) or self.max_iterations < 1:
            raise InputError(
                f"FlowParams.max_iterations must be an integer >= 1, got {self.max_iterations!r}"
            )
        if not (np.isfinite(self.epsilon) and self.epsilon > 0):
            raise InputError(f"FlowParams.epsilon must be > 0, got {self.epsilon!r}")


class FlowFrame:
    """A frame in grey levels, made once for every flow call that uses it.

    Attributes:
        grey: (H, W) uint8.
        size: (width, height) of the frame in px.
    """

    def __init__(self, grey: np.ndarray):
        self.grey = grey
        self.size = (grey.shape[1], grey.shape[0])
        self._small: dict[int, FlowFrame] = {}

    def small(self, max_side: int) -> FlowFrame:
        """This frame shrunk so that its long side is at most ``max_side`` px (cached)."""
        if max(self.size) <= max_side:
            return self
        if max_side not in self._small:
            f = max_side / max(self.size)
            size = (max(1, round(self.size[0] * f)), max(1, round(self.size[1] * f)))
            self._small[max_side] = FlowFrame(
                cv2.resize(self.grey, size, interpolation=cv2.INTER_AREA)
            )
        return self._small[max_side]

    @classmethod
    def from_image(cls, image: np.ndarray) -> FlowFrame:
        """From a BGR (H, W, 3) or grey (H, W) uint8 image."""
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim not in (2, 3):
            raise InputError(
                "flow needs a uint8 (H, W) or (H, W, 3) image, "
                f"got {getattr(image, 'shape', image)!r}"
            )
        return cls(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image)


def _lk(a: FlowFrame, b: FlowFrame, pts: np.ndarray, params: FlowParams):
    criteria = (
        cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT,
        params.max_iterations,
        params.epsilon,
    )
    out, status, _ = cv2.calcOpticalFlowPyrLK(
        a.grey, b.grey, pts.reshape(-1, 1, 2), None,
        winSize=(params.win_size, params.win_size), maxLevel=params.max_level, criteria=criteria,
    )  # fmt: skip
    return out.reshape(-1, 2), status.reshape(-1).astype(bool)


def propagate_points(prev: FlowFrame, nxt: FlowFrame, points, params: FlowParams | None = None):
    """Move points from ``prev`` to ``nxt``.

    Args:
        prev, nxt: :class:`FlowFrame` of the same size.
        points: (N, 2) x, y in px of ``prev``.
        params: :class:`FlowParams`.

    Returns:
        ``(points, ok)``: (N, 2) float64 px in ``nxt`` and (N,) bool; where ``ok`` is False
        the point was lost (out of the image, failed solver, forward-backward error) and its
        input position is returned.
    """
    params = params or FlowParams()
    if prev.size != nxt.size:
        raise InputError(f"flow between frames of different sizes: {prev.size} and {nxt.size}")
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    result = pts.copy()
    ok = np.isfinite(pts).all(axis=1)
    w, h = prev.size
    ok &= (pts[:, 0] >= 0) & (pts[:, 0] <= w - 1) & (pts[:, 1] >= 0) & (pts[:, 1] <= h - 1)
    if not ok.any():
        return result, ok
    src = pts[ok].astype(np.float32)
    fwd, st = _lk(prev, nxt, src, params)
    if params.fb_threshold > 0:
        back, st_b = _lk(nxt, prev, fwd, params)
        st &= st_b & (np.linalg.norm(back - src, axis=1) <= params.fb_threshold)
    st &= np.isfinite(fwd).all(axis=1)
    st &= (fwd[:, 0] >= 0) & (fwd[:, 0] <= w - 1) & (fwd[:, 1] >= 0) & (fwd[:, 1] <= h - 1)
    idx = np.flatnonzero(ok)
    result[idx[st]] = fwd[st]
    ok[idx[~st]] = False
    return result, ok


def propagate_keypoints(
    prev: FlowFrame,
    nxt: FlowFrame,
    keypoints,
    kpt_threshold: float = 0.0,
    params: FlowParams | None = None,
) -> np.ndarray:
    """Move pose keypoints (P, K, 3) (x, y px, score) from ``prev`` to ``nxt``.

    Keypoints scored <= ``kpt_threshold`` are left as they are; keypoints the flow loses
    become (0, 0, 0) (missing). Returns a new (P, K, 3) array.
    """
    kpts = np.array(keypoints, dtype=np.float64)
    if kpts.ndim != 3 or kpts.shape[2] != 3:
        raise InputError(f"keypoints must have shape (P, K, 3) (x, y, score), got {kpts.shape}")
    if kpts.size == 0:
        return kpts
    present = kpts[..., 2] > kpt_threshold
    sel = kpts[present]
    sel[:, :2], ok = propagate_points(prev, nxt, sel[:, :2], params)
    sel[~ok] = 0.0
    kpts[present] = sel
    return kpts


def estimate_camera_motion(
    prev: FlowFrame, nxt: FlowFrame, grid: tuple[int, int] = (16, 12), max_side: int = 320
) -> np.ndarray | None:
    """The global image motion between two frames, for camera-motion compensation (as in
    BoT-SORT).

    A grid of points on copies of the frames shrunk to ``max_side`` px is followed by
    Lucas-Kanade (with the forward-backward check; points on flat areas fail it) and a
    similarity transform (rotation, uniform scale, translation) is fitted with RANSAC, so
    people moving on their own are outliers. When too few points follow (a fast pan), it
    retries once on smaller frames with a deeper pyramid. About 3 ms on a 768x576 frame.

    Returns:
        (2, 3) float64 affine mapping ``prev`` px to ``nxt`` px, or None when too few points
        could be followed (flat or unrelated frames).
    """
    if prev.size != nxt.size:
        raise InputError(f"flow between frames of different sizes: {prev.size} and {nxt.size}")
    # A fast pan moves the image further than the first try follows (about 30 px of the
    # shrunk frame); only then retry on frames half as large, with a deeper pyramid and a
    # looser forward-backward check (motion blur comes with fast pans).
    tries = ((max_side, 2, 0.5), (max_side // 2, 4, 1.0))
    for side, max_level, fb_threshold in tries:
        a, b = prev.small(side), nxt.small(side)
        scale = a.size[0] / prev.size[0]
        w, h = a.size
        gx, gy = grid
        xs = (np.arange(gx) + 0.5) * (w / gx)
        ys = (np.arange(gy) + 0.5) * (h / gy)
        pts = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
        params = FlowParams(win_size=15, max_level=max_level, fb_threshold=fb_threshold)
        moved, ok = propagate_points(a, b, pts, params)
        if ok.sum() < 8:
            continue
        matrix, inliers = cv2.estimateAffinePartial2D(
            pts[ok], moved[ok], method=cv2.RANSAC, ransacReprojThreshold=1.0
        )
        if matrix is not None and inliers is not None and int(inliers.sum()) >= 8:
            break
    else:
        return None
    matrix = matrix.astype(np.float64)
    matrix[:, 2] /= scale  # the linear part is the same at both scales
    return matrix
