"""Bottom-up codecs: one object per representation, pairing target encoding with decoding so
that stride, sigmas and channel layout are defined once.

* ``SimplePoseCodec``: the 50-channel SimplePose layout (SPEC 3.1, 3.4): 30 limb Gaussian
  response maps, 18 keypoint heatmaps, person mask, keypoint max.
* ``OpenPosePafCodec``: the 57-channel OpenPose CMU-18 layout of the bundled mobilenet_thin
  model: 18 keypoint heatmaps, background, 19 two-channel PAFs in the graph's order.

Both decode through the C++ keypoint assignment (``simplepose.decode.grouping``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..decode.grouping import group
from ..decode.params import GroupingParams
from ..errors import InputError
from ..geometry import BottomUpGeometry
from ..skeleton import OPENPOSE18, SIMPLEPOSE18, BottomUpLayout
from ..structures import Person, clip_keypoints
from .render import render_keypoint_gaussians, render_limb_gaussians, render_pafs

__all__ = [
    "ABSENT",
    "OCCLUDED",
    "VISIBLE",
    "OpenPosePafCodec",
    "SimplePoseCodec",
    "coco_to_internal",
    "people_from_grouping",
]

# Internal visibility codes (SPEC 3.1); "labelled" means code < ABSENT.
OCCLUDED, VISIBLE, ABSENT, UNLABELLED = 0, 1, 2, 3
_COCO_V_TO_CODE = np.array([ABSENT, OCCLUDED, VISIBLE])  # indexed by COCO v = 0, 1, 2


def coco_to_internal(keypoints: np.ndarray, layout: BottomUpLayout = SIMPLEPOSE18) -> np.ndarray:
    """Dataset keypoints (COCO-17, or the layout's dataset layout) -> the network's parts.

    Args:
        keypoints: (N, K, 3) x, y (any px frame), COCO visibility v in {0, 1, 2}; K = the
            number of parts with a dataset index in ``layout.to_coco`` (17 for SIMPLEPOSE18).

    Returns:
        (N, P, 3) x, y, internal code (1 visible, 0 occluded, 2 absent). A synthetic neck
        (a part without dataset index, named ``neck``) is the shoulders' midpoint when both are
        labelled; its code is the min of theirs.
    """
    k = int((layout.to_coco_array >= 0).sum())
    keypoints = np.asarray(keypoints, dtype=np.float64).reshape(-1, k, 3)
    v = np.clip(keypoints[..., 2].astype(np.int64), 0, 2)
    out = np.zeros((len(keypoints), layout.num_keypoints, 3), dtype=np.float64)
    out[..., 2] = ABSENT
    for part, coco in enumerate(layout.to_coco):
        if coco >= 0:
            out[:, part, :2] = keypoints[:, coco, :2]
            out[:, part, 2] = _COCO_V_TO_CODE[v[:, coco]]
    if "neck" not in layout.keypoints or layout.to_coco[layout.keypoints.index("neck")] >= 0:
        return out  # no synthetic neck (CrowdPose has a real one, MPII its thorax)
    neck = layout.keypoints.index("neck")
    rsho, lsho = layout.keypoints.index("right_shoulder"), layout.keypoints.index("left_shoulder")
    both = (out[:, rsho, 2] < ABSENT) & (out[:, lsho, 2] < ABSENT)
    out[both, neck, :2] = (out[both, rsho, :2] + out[both, lsho, :2]) / 2.0
    out[both, neck, 2] = np.minimum(out[both, rsho, 2], out[both, lsho, 2])
    return out


def people_from_grouping(result, geometry: BottomUpGeometry, layout: BottomUpLayout) -> list[Person]:
    """GroupingResult (heatmap px, internal parts) -> Persons (dataset keypoints: COCO-17 for
    SIMPLEPOSE18 / OPENPOSE18, the layout's K otherwise; original px)."""
    num = len(result)
    if num == 0:
        return []
    to_coco = layout.to_coco_array
    parts = np.flatnonzero(to_coco >= 0)
    k = len(parts)
    kpts = np.zeros((num, k, 3), dtype=np.float64)
    kpts[:, to_coco[parts], :2] = clip_keypoints(
        geometry.heatmap_to_original(result.people[:, parts, :2]), geometry.orig_w, geometry.orig_h
    )
    kpts[:, to_coco[parts], 2] = result.people[:, parts, 2]
    missing = np.ones((num, k), dtype=bool)
    missing[:, to_coco[parts]] = result.part_ids[:, parts] < 0
    kpts[missing] = 0.0
    return [Person.from_keypoints(kpts[j], float(result.scores[j])) for j in range(num)]


def _check_maps(maps: np.ndarray, channels: int, name: str) -> np.ndarray:
    if not isinstance(maps, np.ndarray) or maps.ndim != 3 or maps.shape[0] != channels:
        shape = getattr(maps, "shape", None)
        raise InputError(f"{name} must be a ({channels}, H, W) array, got shape {shape}")
    return maps


class _GroupingDecoder:
    """Decode shared by the bottom-up codecs: ``split`` the maps, group, map to COCO-17."""

    def decode(
        self,
        maps: np.ndarray,
        geometry: BottomUpGeometry,
        params: GroupingParams = GroupingParams(),
        backend: str = "cpp",
    ) -> list[Person]:
        """(C, H, W) maps on the geometry's heatmap grid -> people in original px.

        Keypoint peaks in the padding (cells beyond :attr:`BottomUpGeometry.valid_heatmap_hw`)
        are ignored, and decoded keypoints are clipped to the image
        (:func:`~simplepose.structures.clip_keypoints`).
        """
        keypoint_maps, limb_maps = self.split(maps)
        vh, vw = geometry.valid_heatmap_hw
        if keypoint_maps.ndim == 3 and (vh < keypoint_maps.shape[1] or vw < keypoint_maps.shape[2]):
            keypoint_maps = keypoint_maps.copy()  # never write into the caller's maps
            keypoint_maps[:, vh:, :] = 0.0
            keypoint_maps[:, :, vw:] = 0.0
        sx, sy = geometry.heatmap_to_original_scale
        limbs = self.layout.limbs_array
        result = group(keypoint_maps, limb_maps, limbs, params, sx, sy, geometry.orig_h, backend)
        return people_from_grouping(result, geometry, self.layout)


@dataclass(frozen=True)
class SimplePoseCodec(_GroupingDecoder):
    """SimplePose targets (SPEC 3.4) and their decoding.

    Attributes:
        stride: input px per heatmap cell.
        keypoint_sigma: keypoint Gaussian sigma in input px (9 at 512 input).
        limb_sigma: limb response sigma in input px.
        limb_threshold: limb values <= this become ``limb_floor``.
        limb_floor: 0 (clean) or 0.01 (reference [QUIRK]).
        limb_combine: ``"max"`` (clean) or ``"mean"`` (reference) across people.
    """

    stride: int = 4
    keypoint_sigma: float = 9.0
    limb_sigma: float = 7.0
    limb_threshold: float = 0.015
    limb_floor: float = 0.0
    limb_combine: str = "max"
    layout: BottomUpLayout = field(default=SIMPLEPOSE18, repr=False)

    @property
    def num_channels(self) -> int:
        return self.layout.extra["num_channels"]

    def encode(self, joints: np.ndarray, out_hw: tuple[int, int], person_mask: np.ndarray | None = None) -> np.ndarray:
        """Render the 50 target channels.

        Args:
            joints: (N, 18, 3) x, y in input px and internal visibility code.
            out_hw: (H, W) heatmap size in cells.
            person_mask: optional (H, W) mask of all people (1 = person) already eroded,
                for channel 48; zeros when None.

        Returns:
            (50, H, W) float32 in [0, 1].
        """
        joints = np.asarray(joints, dtype=np.float64).reshape(-1, self.layout.num_keypoints, 3)
        labelled = joints[..., 2] < ABSENT
        xy = joints[..., :2]
        limbs = render_limb_gaussians(
            xy, labelled, self.layout.limbs_array, out_hw, self.stride, self.limb_sigma,
            self.limb_threshold, self.limb_floor, combine=self.limb_combine,
        )  # fmt: skip
        keypoints = render_keypoint_gaussians(xy, labelled, out_hw, self.stride, self.keypoint_sigma)
        mask = np.zeros((1,) + tuple(out_hw), np.float32) if person_mask is None else person_mask[None]
        kmax = keypoints.max(axis=0, keepdims=True)
        return np.clip(np.concatenate([limbs, keypoints, mask.astype(np.float32), kmax]), 0.0, 1.0)

    def split(self, maps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(50, H, W) -> C-contiguous float32 keypoint maps (18, H, W), limb maps (30, H, W)."""
        _check_maps(maps, self.num_channels, "SimplePose maps")
        k0, k1 = self.layout.extra["keypoint_channels"]
        l0, l1 = self.layout.extra["limb_channels"]
        as32 = lambda a: np.ascontiguousarray(a, dtype=np.float32)
        return as32(maps[k0:k1]), as32(maps[l0:l1])


@dataclass(frozen=True)
class OpenPosePafCodec(_GroupingDecoder):
    """OpenPose CMU-18 heatmaps + PAFs in the channel order of the mobilenet_thin graph.

    Attributes:
        stride: input px per cell (8 for the bundled model).
        keypoint_sigma: keypoint Gaussian sigma in input px.
        paf_width: PAF half-width in input px.
    """

    stride: int = 8
    keypoint_sigma: float = 7.0
    paf_width: float = 8.0
    layout: BottomUpLayout = field(default=OPENPOSE18, repr=False)

    @property
    def num_channels(self) -> int:
        return self.layout.extra["num_channels"]

    def encode(self, joints: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
        """(N, 18, 3) input px + internal code -> (57, H, W) float32 in the graph's order:
        18 keypoint maps, background (1 - max), then 38 PAF channels."""
        joints = np.asarray(joints, dtype=np.float64).reshape(-1, self.layout.num_keypoints, 3)
        labelled = joints[..., 2] < ABSENT
        xy = joints[..., :2]
        heat = render_keypoint_gaussians(xy, labelled, out_hw, self.stride, self.keypoint_sigma)
        background = 1.0 - heat.max(axis=0, keepdims=True)
        pafs = render_pafs(xy, labelled, self.layout.limbs_array, out_hw, self.stride, self.paf_width)
        out = np.zeros((self.num_channels,) + tuple(out_hw), dtype=np.float32)
        out[:18], out[18:19] = heat, background
        for k, (cx, cy) in enumerate(self.layout.extra["paf_xy"]):
            out[19 + cx], out[19 + cy] = pafs[k, 0], pafs[k, 1]
        return out

    def split(self, maps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(57, H, W) -> keypoint maps (18, H, W) and per-limb PAFs (19, 2, H, W), float32."""
        _check_maps(maps, self.num_channels, "OpenPose maps")
        xy = np.asarray(self.layout.extra["paf_xy"]) + 19
        heat = np.ascontiguousarray(maps[:18], dtype=np.float32)
        return heat, np.ascontiguousarray(maps[xy], dtype=np.float32)
