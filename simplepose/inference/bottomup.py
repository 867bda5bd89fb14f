"""Bottom-up inference (SPEC 3.8): resize + pad, forward (optionally with the flipped image and
at several scales), fuse the maps on one heatmap grid, decode with the C++ assignment.

Frames: the network sees *input px* (image resized to height ``box_size * scale`` and padded
right/bottom); maps live on the stride-s *heatmap px* grid of that input; people come back in
*original px*. Unlike the reference, maps are never upsampled to the image size: every
scale's maps are resampled onto the scale-1 heatmap grid with one exact affine warp, and
peaks are refined to sub-cell precision there.

Everything model-specific (codec, input normalisation, output adapter, padding multiple,
default input height and grouping parameters) comes from the model's
:class:`~simplepose.spec.PoseModelSpec`.

Steps (the interface shared with :class:`~simplepose.inference.topdown.TopDownPipeline`):
:meth:`BottomUpPipeline.prepare` (resize + pad per scale, :class:`BottomUpInputs`),
:meth:`~BottomUpPipeline.forward` (network inputs -> maps; the only step that touches the
network) and :meth:`~BottomUpPipeline.decode` (flip merge, resampling onto the scale-1 grid,
grouping -> people in original px).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from ..codecs.bottomup import SimplePoseCodec
from ..decode.params import GroupingParams
from ..errors import InputError
from ..geometry import BottomUpGeometry
from ..spec import PoseModelSpec
from ..structures import Person
from ..utils.image import check_image

__all__ = ["BottomUpInputs", "BottomUpPipeline", "flip_channel_index"]

LOG = logging.getLogger(__name__)

#: what a bottom-up spec whose ``inference`` omits them gets: input height at scale 1 (input
#: px) and the multiple the padded input sides are rounded up to
DEFAULT_BOX_SIZE = 512
DEFAULT_PAD_MULTIPLE = 64


@dataclass
class BottomUpInputs:
    """What :meth:`BottomUpPipeline.prepare` hands to ``forward`` and ``decode``: ``n``
    same-size images.

    Attributes:
        inputs: per scale, the (M, 3, pad_h, pad_w) float32 network inputs: the ``n`` images,
            then (flip test) their ``n`` mirrors; None for a geometry-only plan.
        geometries: per scale, the geometry of those inputs.
        base: the scale-1 geometry; maps are fused and decoded on its heatmap grid.
        n: number of images.
        flip: whether the second half of each scale's outputs are mirrored images.
    """

    inputs: list[np.ndarray] | None
    geometries: list[BottomUpGeometry]
    base: BottomUpGeometry
    n: int
    flip: bool


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
        bkg = np.asarray(layout.extra["keypoint_bkg_flip"])  # keypoints + mask + max
        perm[k0 : k0 + len(bkg)] = k0 + bkg
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
        model: a torch module (IMHN or OpenPose), put in eval mode here; or None for a
            pipeline that only plans and decodes (the bottom-up oracle).
        spec: the model's :class:`~simplepose.spec.PoseModelSpec` (bottom-up).
        device: torch device string.
        box_size: input height at scale 1 (default: the spec's ``inference["box_size"]``).
        scales: scale factors averaged (SPEC 3.8 ``scale_search``).
        flip: also run the mirrored image and average.
        params: grouping parameters (default: the spec's ``inference["params"]``).
        backend: grouping implementation, ``"cpp"`` or ``"reference"`` (Python).
        channels_last: run the network in channels-last layout (faster for the depthwise
            convs of OpenPose on CPU, same values to float rounding).
    """

    def __init__(
        self,
        model,
        spec: PoseModelSpec,
        device: str = "cpu",
        box_size: int | None = None,
        scales: Sequence[float] = (1.0,),
        flip: bool = False,
        params: GroupingParams | None = None,
        backend: str = "cpp",
        channels_last: bool = False,
    ):
        import torch

        if not isinstance(spec, PoseModelSpec) or spec.paradigm != "bottomup":
            got = spec.name if isinstance(spec, PoseModelSpec) else type(spec).__name__
            raise InputError(f"BottomUpPipeline needs a bottom-up PoseModelSpec, got {got}")
        if not scales or any(not np.isfinite(s) or s <= 0 for s in scales):
            raise InputError(f"scales must be positive numbers, got {list(scales)}")
        self.torch = torch
        self.spec = spec
        self.codec = spec.build_codec()
        self.device = device
        self.model = model.eval().to(device) if model is not None else None
        self.box_size = int(box_size or spec.inference.get("box_size", DEFAULT_BOX_SIZE))
        self.pad_multiple = int(spec.inference.get("pad_multiple", DEFAULT_PAD_MULTIPLE))
        self.scales = tuple(float(s) for s in scales)
        self.flip = bool(flip)
        self.params = params or GroupingParams(**spec.inference.get("params", {}))
        self.backend = backend
        norm = spec.input
        self._bgr_to_rgb = norm.channel_order == "rgb"
        self._mean = np.asarray(norm.mean, np.float32)[:, None, None]
        self._inv_std = (1.0 / np.asarray(norm.std, np.float64)).astype(np.float32)[:, None, None]
        self._zero_mean = not self._mean.any()
        self._fill = np.asarray(norm.fill, np.float32)
        self.flip_perm, self.flip_sign = flip_channel_index(self.codec)
        self.channels_last = False
        self.set_channels_last(channels_last)

    def set_channels_last(self, enabled: bool) -> None:
        """Run the network in channels-last (True) or NCHW (False) memory layout."""
        enabled = bool(enabled)
        if self.model is not None and enabled != self.channels_last:
            fmt = self.torch.channels_last if enabled else self.torch.contiguous_format
            self.model.to(memory_format=fmt)
        self.channels_last = enabled

    # ------------------------------------------------------------------ helpers
    def geometry(self, width: int, height: int, scale: float = 1.0) -> BottomUpGeometry:
        return BottomUpGeometry.for_image(width, height, self.box_size, scale, self.codec.stride,
                                          self.pad_multiple)  # fmt: skip

    def preprocess(self, image: np.ndarray, geometry: BottomUpGeometry) -> np.ndarray:
        """BGR uint8 (H, W, 3) -> padded, normalised float32 (3, pad_h, pad_w) network input."""
        resized = cv2.resize(image, (geometry.in_w, geometry.in_h), interpolation=cv2.INTER_CUBIC)
        padded = np.empty((geometry.pad_h, geometry.pad_w, 3), dtype=np.float32)
        padded[...] = self._fill
        padded[: geometry.in_h, : geometry.in_w] = resized
        chw = padded.transpose(2, 0, 1)
        if self._bgr_to_rgb:
            chw = chw[::-1]
        if not self._zero_mean:
            chw = chw - self._mean
        return np.ascontiguousarray(chw * self._inv_std)

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
        t_s = (
            0.5 * np.array([src.scale_x, src.scale_y]) - 0.5 - (src.stride - 1) / 2.0
        ) / src.stride
        m = np.hstack([lin_s @ lin_d, (lin_s @ t_d + t_s)[:, None]])
        hh, ww = dst.heatmap_hw
        flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        return np.stack([
            cv2.warpAffine(p, m, (ww, hh), flags=flags, borderMode=cv2.BORDER_REPLICATE)
            for p in maps.astype(np.float32)
        ])  # fmt: skip

    # ------------------------------------------------------------------ steps
    def plan(self, width: int, height: int, n: int = 1) -> BottomUpInputs:
        """The geometry of ``n`` images of ``width`` x ``height`` without pixels (``inputs``
        None): what the bottom-up oracle decodes."""
        geometries = [self.geometry(width, height, scale) for scale in self.scales]
        return BottomUpInputs(None, geometries, self.geometry(width, height, 1.0), n, self.flip)

    def prepare(self, image: np.ndarray) -> BottomUpInputs:
        """Step 1 for one BGR uint8 (H, W, 3) image: resized, padded, normalised inputs."""
        return self.prepare_batch([image])

    def prepare_batch(self, images: Sequence[np.ndarray]) -> BottomUpInputs:
        """Step 1 for several images of one size (they share every geometry)."""
        images = [check_image(im, f"image {i}") for i, im in enumerate(images)]
        if not images:
            raise InputError("prepare_batch needs at least one image")
        h, w = images[0].shape[:2]
        if any(im.shape[:2] != (h, w) for im in images):
            raise InputError("prepare_batch: the images must share one size (use predict_batch)")
        plan = self.plan(w, h, len(images))
        plan.inputs = []
        for geometry in plan.geometries:
            inputs = np.stack([self.preprocess(im, geometry) for im in images])
            if self.flip:
                inputs = np.concatenate([inputs, inputs[..., ::-1]])
            plan.inputs.append(np.ascontiguousarray(inputs))
        return plan

    def forward(self, inputs: BottomUpInputs) -> list[np.ndarray]:
        """Step 2: per scale, (M, C, h, w) float32 maps in the codec's channel order."""
        if inputs.inputs is None:
            raise InputError("BottomUpPipeline.forward: these inputs have no pixels (a plan)")
        if self.model is None:
            raise InputError("BottomUpPipeline.forward: this pipeline has no model")
        torch = self.torch
        outs = []
        with torch.inference_mode():
            for batch in inputs.inputs:
                x = torch.from_numpy(batch).to(self.device)
                if self.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                outs.append(self.spec.select_output(self.model(x)).float().cpu().numpy())
        return outs

    def fuse(self, inputs: BottomUpInputs, outputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Flip-merged maps of every scale averaged on the scale-1 heatmap grid: per image
        a (C, h, w) float32 array on ``inputs.base``'s grid."""
        n, base = inputs.n, inputs.base
        if len(outputs) != len(inputs.geometries):
            raise InputError(f"decode: {len(outputs)} outputs for {len(inputs.geometries)} scales")
        shape = (self.codec.num_channels,) + base.heatmap_hw
        fused = [np.zeros(shape, np.float32) for _ in range(n)]
        for maps, geometry in zip(outputs, inputs.geometries):
            if inputs.flip:
                sign = self.flip_sign[None, :, None, None]
                mirrored = maps[n:, :, :, ::-1][:, self.flip_perm] * sign
                maps = (maps[:n] + mirrored) / 2.0
            for j in range(n):
                fused[j] += self._resample(maps[j], geometry, base)
        return [f / len(outputs) for f in fused]

    def decode_batch(self, inputs: BottomUpInputs,
                     outputs: Sequence[np.ndarray]) -> list[list[Person]]:
        """Step 3 for every image of ``inputs``: people in original px."""
        return [self.codec.decode(m, inputs.base, self.params, self.backend)
                for m in self.fuse(inputs, outputs)]  # fmt: skip

    def decode(self, inputs: BottomUpInputs, outputs: Sequence[np.ndarray]) -> list[Person]:
        """Step 3: people in original px (of the first image of ``inputs``)."""
        return self.decode_batch(inputs, outputs)[0]

    # ---------------------------------------------------------------------- API
    def maps(self, image: np.ndarray) -> tuple[np.ndarray, BottomUpGeometry]:
        """Fused (C, h, w) maps on the scale-1 heatmap grid, and that grid's geometry."""
        inputs = self.prepare(image)
        return self.fuse(inputs, self.forward(inputs))[0], inputs.base

    def predict(self, image: np.ndarray) -> list[Person]:
        """BGR uint8 (H, W, 3) image -> people in original px."""
        inputs = self.prepare(image)
        return self.decode(inputs, self.forward(inputs))

    def predict_batch(self, images: Sequence[np.ndarray]) -> list[list[Person]]:
        """People in each image; images of one size share a forward pass."""
        images = [check_image(im, f"image {i}") for i, im in enumerate(images)]
        out: list = [None] * len(images)
        groups: dict[tuple, list[int]] = {}
        for i, im in enumerate(images):
            groups.setdefault(im.shape[:2], []).append(i)
        for idx in groups.values():
            inputs = self.prepare_batch([images[i] for i in idx])
            for i, people in zip(idx, self.decode_batch(inputs, self.forward(inputs))):
                out[i] = people
        return out

