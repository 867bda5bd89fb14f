"""Result structures shared by the bottom-up and top-down paths."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Person", "clip_keypoints"]


def clip_keypoints(keypoints: np.ndarray, width: int, height: int) -> np.ndarray:
    """Keep decoded keypoints inside the image: x, y (columns 0 and 1, original px) clipped to
    ``[0, width - 1] x [0, height - 1]`` (the outermost pixel centres); other columns unchanged.

    Args:
        keypoints: (..., C >= 2) array, original px.
        width, height: image size in px.

    Returns:
        a clipped float64 copy.
    """
    out = np.array(keypoints, dtype=np.float64, copy=True)
    out[..., 0] = np.clip(out[..., 0], 0.0, max(float(width) - 1.0, 0.0))
    out[..., 1] = np.clip(out[..., 1], 0.0, max(float(height) - 1.0, 0.0))
    return out


@dataclass
class Person:
    """One detected person in original-image px.

    Attributes:
        keypoints: (17, 3) float COCO-17 keypoints: x, y (original px), score; a missing
            keypoint is (0, 0, 0).
        score: person confidence used for ranking (COCO result ``score``).
        box: (4,) x1, y1, x2, y2 (original px) around the present keypoints (bottom-up) or
            the detector box (top-down).
    """

    keypoints: np.ndarray
    score: float
    box: np.ndarray

    @classmethod
    def from_keypoints(cls, keypoints: np.ndarray, score: float) -> "Person":
        present = keypoints[:, 2] > 0
        if present.any():
            xy = keypoints[present, :2]
            box = np.array([xy[:, 0].min(), xy[:, 1].min(), xy[:, 0].max(), xy[:, 1].max()])
        else:
            box = np.zeros(4)
        return cls(keypoints=keypoints, score=float(score), box=box)

    @property
    def num_keypoints(self) -> int:
        return int((self.keypoints[:, 2] > 0).sum())

    def to_coco(self, image_id: int) -> dict:
        """COCO keypoint result record (category 1, 51 floats)."""
        return {
            "image_id": int(image_id),
            "category_id": 1,
            "keypoints": [round(float(v), 3) for v in self.keypoints.reshape(-1)],
            "score": float(self.score),
        }
