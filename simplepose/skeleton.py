"""Keypoint layouts: the single source of every skeleton constant in simplepose.

Three layouts live here:

* ``COCO17``: the 17 COCO keypoints, flip pairs, skeleton and OKS sigmas (SPEC 1.1-1.2).
* ``SIMPLEPOSE18``: SimplePose's internal 18-point layout (COCO plus a synthetic neck), its
  30 limbs in processing order, the 50-channel output layout and both test-time flip
  permutations (SPEC 3.1).
* ``OPENPOSE18``: the CMU-18 / 19-limb part-affinity-field layout of the bundled OpenPose
  mobilenet_thin model (shared/data/README.md).

Every index here is 0-based.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "COCO_KEYPOINTS",
    "COCO_FLIP_PAIRS",
    "COCO_SKELETON",
    "COCO_SIGMAS",
    "COCO_FLIP_INDEX",
    "BottomUpLayout",
    "SIMPLEPOSE18",
    "OPENPOSE18",
    "flip_index_from_pairs",
]

# ----------------------------------------------------------------------------- COCO-17
COCO_KEYPOINTS: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip
COCO_FLIP_PAIRS: tuple[tuple[int, int], ...] = (
    (1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16),
)  # fmt: skip
# The COCO category record's skeleton, converted from 1-based to 0-based.
COCO_SKELETON: tuple[tuple[int, int], ...] = tuple(
    (a - 1, b - 1)
    for a, b in (
        (16, 14), (14, 12), (17, 15), (15, 13), (12, 13), (6, 12), (7, 13), (6, 7), (6, 8),
        (7, 9), (8, 10), (9, 11), (2, 3), (1, 2), (1, 3), (2, 4), (3, 5), (4, 6), (5, 7),
    )  # fmt: skip
)
# Per-keypoint OKS sigmas of pycocotools (the evaluator uses var = (2 sigma)^2).
COCO_SIGMAS = np.array(
    [.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87, .89, .89],
    dtype=np.float64,
) / 10.0  # fmt: skip


def flip_index_from_pairs(num: int, pairs) -> tuple[int, ...]:
    """Permutation that swaps each (left, right) pair and fixes every other index."""
    index = list(range(num))
    for a, b in pairs:
        index[a], index[b] = b, a
    return tuple(index)


COCO_FLIP_INDEX: tuple[int, ...] = flip_index_from_pairs(17, COCO_FLIP_PAIRS)


# ------------------------------------------------------------------- bottom-up layouts
@dataclass(frozen=True)
class BottomUpLayout:
    """An 18-part layout with limbs, as used by a bottom-up network and its grouping.

    Attributes:
        name: short identifier.
        keypoints: part names in channel order.
        limbs: ``(from_part, to_part)`` per limb, in grouping processing order.
        keypoint_flip: permutation of the part channels under a horizontal flip.
        limb_flip: permutation of the limb channels under a horizontal flip.
        to_coco: for each internal part, its COCO-17 index, or -1 when it has none (neck).
        limb_kind: ``"gaussian"`` (one scalar response map per limb, SimplePose) or
            ``"paf"`` (two vector-field channels per limb, OpenPose).
    """

    name: str
    keypoints: tuple[str, ...]
    limbs: tuple[tuple[int, int], ...]
    keypoint_flip: tuple[int, ...]
    limb_flip: tuple[int, ...]
    to_coco: tuple[int, ...]
    limb_kind: str
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def num_keypoints(self) -> int:
        return len(self.keypoints)

    @property
    def num_limbs(self) -> int:
        return len(self.limbs)

    @property
    def limbs_array(self) -> np.ndarray:
        """(L, 2) int32 limb endpoints."""
        return np.asarray(self.limbs, dtype=np.int32).reshape(-1, 2)

    @property
    def to_coco_array(self) -> np.ndarray:
        """(P,) int32 internal part -> COCO index (-1: dropped)."""
        return np.asarray(self.to_coco, dtype=np.int32)

    def derived_limb_flip(self) -> tuple[int, ...]:
        """Limb permutation implied by ``keypoint_flip``: limb k maps to the limb whose
        endpoints are the mirrored endpoints of k (in either direction)."""
        lookup = {}
        for k, (a, b) in enumerate(self.limbs):
            lookup[(a, b)] = k
            lookup.setdefault((b, a), k)
        kf = self.keypoint_flip
        return tuple(lookup[(kf[a], kf[b])] for a, b in self.limbs)


_CMU18_NAMES = (
    "nose", "neck", "right_shoulder", "right_elbow", "right_wrist",
    "left_shoulder", "left_elbow", "left_wrist", "right_hip", "right_knee", "right_ankle",
    "left_hip", "left_knee", "left_ankle", "right_eye", "left_eye", "right_ear", "left_ear",
)  # fmt: skip
_CMU18_FLIP = (0, 1, 5, 6, 7, 2, 3, 4, 11, 12, 13, 8, 9, 10, 15, 14, 17, 16)
# Internal part -> COCO-17 index; the neck (1) has no COCO counterpart.
_CMU18_TO_COCO = (0, -1, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3)

SIMPLEPOSE18 = BottomUpLayout(
    name="simplepose18",
    keypoints=_CMU18_NAMES,
    limbs=(
        (1, 0), (1, 14), (1, 15), (1, 16), (1, 17), (0, 14), (0, 15), (14, 16), (15, 17),
        (1, 2), (2, 3), (3, 4), (1, 5), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10),
        (1, 11), (11, 12), (12, 13), (0, 2), (0, 5), (2, 8), (8, 12), (5, 11), (11, 9),
        (16, 2), (17, 5), (8, 11),
    ),  # fmt: skip
    keypoint_flip=_CMU18_FLIP,
    # SPEC 3.1, verbatim from the reference config (checked against derived_limb_flip in tests).
    limb_flip=(0, 2, 1, 4, 3, 6, 5, 8, 7, 12, 13, 14, 9, 10, 11, 18, 19, 20, 15, 16, 17,
               22, 21, 25, 26, 23, 24, 28, 27, 29),  # fmt: skip
    to_coco=_CMU18_TO_COCO,
    limb_kind="gaussian",
    extra={
        # 50-channel network output (SPEC 3.1).
        "limb_channels": (0, 30),
        "keypoint_channels": (30, 48),
        "person_mask_channel": 48,
        "keypoint_max_channel": 49,
        "num_channels": 50,
        # Test-time flip of the 20 keypoint+background channels (18 parts, mask, max).
        "keypoint_bkg_flip": _CMU18_FLIP + (18, 19),
    },
)

# OpenPose mobilenet_thin: 19 limbs and their PAF (x, y) channels counted from the first
# PAF channel (output channel 19), from shared/data/README.md.
_OPENPOSE_LIMBS = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11),
    (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17), (2, 16), (5, 17),
)  # fmt: skip
_OPENPOSE_PAF_XY = (
    (12, 13), (20, 21), (14, 15), (16, 17), (22, 23), (24, 25), (0, 1), (2, 3), (4, 5),
    (6, 7), (8, 9), (10, 11), (28, 29), (30, 31), (34, 35), (32, 33), (36, 37), (18, 19),
    (26, 27),
)  # fmt: skip
_OPENPOSE_TMP = BottomUpLayout("tmp", _CMU18_NAMES, _OPENPOSE_LIMBS, _CMU18_FLIP, (), (), "paf")

OPENPOSE18 = BottomUpLayout(
    name="openpose18",
    keypoints=_CMU18_NAMES,
    limbs=_OPENPOSE_LIMBS,
    keypoint_flip=_CMU18_FLIP,
    limb_flip=_OPENPOSE_TMP.derived_limb_flip(),
    to_coco=_CMU18_TO_COCO,
    limb_kind="paf",
    extra={
        "paf_xy": _OPENPOSE_PAF_XY,  # per limb: (x channel, y channel) within the 38 PAFs
        "num_heatmaps": 19,  # 18 parts + background
        "num_pafs": 38,
        "num_channels": 57,
    },
)
