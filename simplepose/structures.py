"""Result structures shared by the bottom-up and top-down paths."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from .errors import InputError

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
    """One detected person in original-image px (x right, y down; the README's "Coordinates and
    formats" lists every format in one table).

    Attributes:
        keypoints: (K, 3) float keypoints in the order of the model's layout (the spec's
            ``keypoints``: COCO-17 for the bundled model, MPII-16, CrowdPose-14): x, y (original
            px), score (the heatmap peak, about 0-1); a missing keypoint is (0, 0, 0).
        score: the person's ranking score (COCO result ``score``), not a probability. Bottom-up:
            (sum of its keypoint scores + sum of the scores of the limbs that joined them) /
            number of keypoints, 0 to about 2; top-down: box score x mean keypoint score, 0 to 1.
        box: (4,) x1, y1, x2, y2 (original px; "xyxy") around the present keypoints (bottom-up)
            or the person box the keypoints were found in (top-down).
    """

    keypoints: np.ndarray
    score: float
    box: np.ndarray

    @classmethod
    def from_keypoints(cls, keypoints: np.ndarray, score: float) -> Person:
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

    def to_coco(self, image_id: int, category_id: int = 1) -> dict:
        """This person as a COCO keypoint result record; every writer of results uses it.

        Args:
            image_id: the COCO image id.
            category_id: the person category id (1 in COCO).

        Returns:
            ``{"image_id", "category_id", "keypoints", "score"}`` in plain JSON types, the
            keypoints as ``3 K`` floats ``x, y`` (original px) and score, rounded to 0.001.

        Raises:
            InputError: non-integer ids, keypoints that are not (K, 3), a non-finite keypoint
                or score.
        """
        for name, value in (("image_id", image_id), ("category_id", category_id)):
            if not isinstance(value, numbers.Integral) or isinstance(value, bool):
                raise InputError(f"Person.to_coco: {name} must be an integer, got {value!r}")
        kps = np.asarray(self.keypoints, dtype=np.float64)
        if kps.ndim != 2 or kps.shape[1] != 3:
            raise InputError(
                f"Person.to_coco: keypoints must be (K, 3) x, y, score, got {kps.shape}"
            )
        if not np.isfinite(kps).all():
            bad = np.unique(np.nonzero(~np.isfinite(kps))[0]).tolist()
            raise InputError(f"Person.to_coco: keypoints {bad} of image {image_id} are not finite")
        score = float(self.score)
        if not math.isfinite(score):
            raise InputError(f"Person.to_coco: score of image {image_id} is not finite: {score}")
        return {
            "image_id": int(image_id),
            "category_id": int(category_id),
            "keypoints": [round(v, 3) for v in kps.ravel().tolist()],
            "score": score,
        }
