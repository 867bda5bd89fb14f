"""Bottom-up inference (SPEC 3.8): resize + pad, forward (optionally with the flipped image and
at several scales), fuse the maps on one heatmap grid, decode with the C++ assignment.

Frames: the network sees *input px* (image resized to height ``box_size * scale`` and padded
right/bottom); maps live on the stride-s *heatmap px* grid of that input; people come back in
*original px*. Unlike the reference, maps are never upsampled to the image size: every
scale's maps are resampled onto the scale-1 heatmap grid with one exact affine warp, and
peaks are refined to sub-cell precision there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from ..codecs.bottomup import OpenPosePafCodec, SimplePoseCodec
from ..geometry import BottomUpGeometry
from ..decode.params import GroupingParams
from ..errors import InputError
from ..structures import Person
from ..utils.image import check_image

__all__ = ["BOTTOMUP_SPECS", "BottomUpPipeline", "BottomUpSpec", "flip_channel_index"]

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class BottomUpSpec:
    """How to feed a bottom-up network and read its maps.

    Attributes:
        codec: the representation (decode side).
        pixel_scale: input = BGR uint8 * pixel_scale (IMHN: 1/255; OpenPose: 1, raw BGR).
        pad_value: padding value on the uint8 scale (SPEC 3.8: 128).
        pad_multiple: padded input sides are multiples of this.
        select_output: network output -> (N, C, h, w) tensor in the codec's channel order.
        box_size: default input height at scale 1.
        params: default grouping parameters.
    """

    codec: SimplePoseCodec | OpenPosePafCodec
    pixel_scale: float
    pad_value: float
    pad_multiple: int
    select_output: Callable
    box_size: int = 512
    params: GroupingParams = field(default_factory=GroupingParams)


def _imhn_output(out):
    return out[-1][0]  # last stack, finest scale (SPEC 3.8)


def _tensor_output(out):
    return out


BOTTOMUP_SPECS: dict[str, BottomUpSpec] = {
    "imhn": BottomUpSpec(SimplePoseCodec(), 1.0 / 255.0, 128.0, 64, _imhn_output),
    # Tuned on the shared val subset with bench/tune_openpose.py (AP 0.299 -> 0.364; 0.320 at 368).
    "openpose_mobilenet_thin": BottomUpSpec(
        OpenPosePafCodec(), 1.0, 0.0, 8, _tensor_output, box_size=432,
        params=GroupingParams(peak_threshold=0.03, limb_sample_threshold=0.02, limb_pass_ratio=0.6,
                              min_parts=4, min_mean_score=0.3),
    ),
}


def flip_channel_index(codec) -> tuple[np.ndarray, np.ndarray]:
    """Channel permutation and sign per channel that map the maps of a horizontally flipped
    image (already mirrored back) onto the maps of the image: ``maps = sign * flipped[perm]``.

    SimplePose: limbs (30) and keypoints + mask + max (20) are permuted (SPEC 3.1).
    OpenPose: heatmaps (18 + background) are permuted; each PAF moves to its mirror limb and
    its x component changes sign.
    """
    layout = codec.layout
    n = codec.num_channels
    perm, sign = np.arange(n), np.ones(n, dtype=np.float32)
    if isinstance(codec, SimplePoseCodec):
        l0, l1 = layout.extra["limb_channels"]
        k0 = layout.extra["keypoint_channels"][0]
        perm[l0:l1] = l0 + np.asarray(layout.limb_flip)
        perm[k0 : k0 + 20] = k0 + np.asarray(layout.extra["keypoint_bkg_flip"])
    else:
        perm[:18] = layout.keypoint_flip
        xy = np.asarray(layout.extra["paf_xy"]) + 19
        for k, mirror in enumerate(layout.limb_flip):
            perm[xy[k]] = xy[mirror]
            sign[xy[k, 0]] = -1.0
    return perm, sign


class BottomUpPipeline:
    """Image(s) -> people with a bottom-up network.

    Args:
        model: a torch module (IMHN or OpenPose); put in eval mode here.
        spec: a :class:`BottomUpSpec` (``BOTTOMUP_SPECS[name]``).
        device: torch device string.
        box_size: input height at scale 1 (default: the spec's).
        scales: scale factors averaged (SPEC 3.8 ``scale_search``).
        flip: also run the mirrored image and average.
        params: grouping parameters (default: the spec's).
    """

    def __init__(self, model, spec: BottomUpSpec, device: str = "cpu", box_size: int | None = None,
                 scales: Sequence[float] = (1.0,), flip: bool = False, params: GroupingParams | None = None):
        import torch

        if not scales or any(not np.isfinite(s) or s <= 0 for s in scales):
            raise InputError(f"scales must be positive numbers, got {list(scales)}")
        self.torch = torch
        self.model = model.eval().to(device)
        self.spec = spec
        self.device = device
        self.box_size = int(box_size or spec.box_size)
        self.scales = tuple(float(s) for s in scales)
        self.flip = bool(flip)
        self.params = params or spec.params
        self.flip_perm, self.flip_sign = flip_channel_index(spec.codec)

    # ------------------------------------------------------------------ helpers
    def geometry(self, width: int, height: int, scale: float = 1.0) -> BottomUpGeometry:
        s = self.spec
        return BottomUpGeometry.for_image(width, height, self.box_size, scale, s.codec.stride, s.pad_multiple)

    def preprocess(self, image: np.ndarray, geometry: BottomUpGeometry) -> np.ndarray:
        """BGR uint8 (H, W, 3) -> padded float32 (3, pad_h, pad_w) network input."""
        resized = cv2.resize(image, (geometry.in_w, geometry.in_h), interpolation=cv2.INTER_CUBIC)
        padded = np.full((geometry.pad_h, geometry.pad_w, 3), self.spec.pad_value, dtype=np.float32)
        padded[: geometry.in_h, : geometry.in_w] = resized
        return np.ascontiguousarray(padded.transpose(2, 0, 1) * np.float32(self.spec.pixel_scale))

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        torch = self.torch
        with torch.inference_mode():
            x = torch.from_numpy(batch).to(self.device)
            out = self.spec.select_output(self.model(x))
            return out.float().cpu().numpy()

    def _maps_at_scale(self, images: list[np.ndarray], scale: float) -> list[tuple[np.ndarray, BottomUpGeometry]]:
        """Maps of several same-size images at one scale, flip-averaged: [(C, h, w), geometry]."""
        h, w = images[0].shape[:2]
        geometry = self.geometry(w, h, scale)
        inputs = np.stack([self.preprocess(im, geometry) for im in images])
        if self.flip:
            inputs = np.concatenate([inputs, inputs[..., ::-1]])
        maps = self._forward(np.ascontiguousarray(inputs))
        if self.flip:
            n = len(images)
            mirrored = maps[n:, :, :, ::-1][:, self.flip_perm] * self.flip_sign[None, :, None, None]
            maps = (maps[:n] + mirrored) / 2.0
        return [(m, geometry) for m in maps]

    @staticmethod
    def _resample(maps: np.ndarray, src: BottomUpGeometry, dst: BottomUpGeometry) -> np.ndarray:
        """Resample (C, h, w) maps of ``src``'s heatmap grid onto ``dst``'s grid (bilinear).

        The map from dst heatmap px to src heatmap px is one affine: dst heatmap px ->
        original px (``dst.heatmap_to_original``) -> src heatmap px (its inverse for src).
        """
        if src == dst:
            return maps
        lin_d = np.diag([dst.stride / dst.scale_x, dst.stride / dst.scale_y])
        t_d = dst.heatmap_to_original(np.zeros(2))
        lin_s = np.diag([src.scale_x / src.stride, src.scale_y / src.stride])
        t_s = (0.5 * np.array([src.scale_x, src.scale_y]) - 0.5 - (src.stride - 1) / 2.0) / src.stride
        m = np.hstack([lin_s @ lin_d, (lin_s @ t_d + t_s)[:, None]])
        hh, ww = dst.heatmap_hw
        flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        return np.stack([
            cv2.warpAffine(p, m, (ww, hh), flags=flags, borderMode=cv2.BORDER_REPLICATE)
            for p in maps.astype(np.float32)
        ])  # fmt: skip

    # ---------------------------------------------------------------------- API
    def maps(self, image: np.ndarray) -> tuple[np.ndarray, BottomUpGeometry]:
        """Fused (C, h, w) maps on the scale-1 heatmap grid, and that grid's geometry."""
        return self.maps_batch([image])[0]

    def maps_batch(self, images: Sequence[np.ndarray]) -> list[tuple[np.ndarray, BottomUpGeometry]]:
        images = [check_image(im, f"image {i}") for i, im in enumerate(images)]
        out: list = [None] * len(images)
        # images of one size share every geometry: run them as one batch
        groups: dict[tuple, list[int]] = {}
        for i, im in enumerate(images):
            groups.setdefault(im.shape[:2], []).append(i)
        for idx in groups.values():
            batch = [images[i] for i in idx]
            base = self.geometry(batch[0].shape[1], batch[0].shape[0], 1.0)
            fused = [np.zeros((self.spec.codec.num_channels,) + base.heatmap_hw, np.float32) for _ in idx]
            for scale in self.scales:
                for j, (m, g) in enumerate(self._maps_at_scale(batch, scale)):
                    fused[j] += self._resample(m, g, base)
            for j, i in enumerate(idx):
                out[i] = (fused[j] / len(self.scales), base)
        return out

    def predict(self, image: np.ndarray) -> list[Person]:
        """BGR uint8 (H, W, 3) image -> people in original px."""
        return self.predict_batch([image])[0]

    def predict_batch(self, images: Sequence[np.ndarray]) -> list[list[Person]]:
        return [self.spec.codec.decode(m, g, self.params) for m, g in self.maps_batch(images)]
