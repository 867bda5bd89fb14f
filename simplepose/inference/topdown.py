"""Top-down inference for CPN, MSPN and RSN (SPEC 4.6, 5.6, 6.3): person boxes -> crops ->
heatmaps -> keypoints in original px.

Coordinate frames:

* **original px**: the full image (boxes, returned keypoints);
* **input px**: the network input crop, ``codec.input_size = (W_in, H_in)``;
* **heatmap px**: cells of the stride-4 output maps (the codec's business).

The chain per box: ``(x, y, w, h)`` -> centre / scale (padded, aspect fixed:
:func:`~simplepose.data.topdown_transforms.box_to_center_scale`) -> a 2 x 3 original px ->
input px matrix (:func:`crop_affines`) -> bilinear crop -> normalise -> forward -> decode with
the codec, passing the *inverse of the same matrix* so coordinates come back in original px
(:func:`heatmaps_to_people`, shared with the top-down oracle so the oracle measures exactly
this decode path).

Flip test (SPEC 2.4): the mirrored crop goes through the network, its heatmaps are flipped back
with the codec's :meth:`~simplepose.codecs.topdown.TopDownHeatmapCodec.flip_back` (W reversed,
L/R channels swapped, no pixel shift) and averaged in. Mirroring heatmap columns maps heatmap
cell ``c`` onto ``W_out - 1 - c``, i.e. input px ``x`` onto ``W_in - x`` (cell ``c`` covers
``[4c, 4c + 4)``). The references mirror the *crop* with ``cv2.flip`` (``x -> W_in - 1 - x``), so
their flipped branch lands 1 input px to the right and the average 0.5 px. By default
(``reference_flip=False``) the mirrored crop is cut so that its column ``u`` shows input px
``W_in - u`` (one extra column is warped, nothing is resampled), which makes flip-back exact.

Input normalisation follows the training convention of each family (a constructor argument,
decided by the codec's family by default):

* CPN (PyTorch CPN, SPEC 4.1, which our CPN weights follow): **RGB**, ``x / 255`` minus the
  RGB pixel mean / 255, no std; the crop border is filled with the pixel mean (the reference
  pads the image with its mean before cropping);
* MSPN / RSN (SPEC 5.1): **BGR**, ``x / 255``, ImageNet mean (0.406, 0.456, 0.485) and std
  (0.225, 0.224, 0.229) in BGR order; the crop border is 0 (``cv2.warpAffine`` constant 0).

Both are stored as 0..255 ``pixel_mean`` / ``pixel_std`` in the network's channel order, plus
``channel_order`` ("rgb" / "bgr"); the network input is ``(crop - mean) / std``.

Crop padding: (1.25, 1.25) by default for every family, then the aspect is fixed to
``W_in / H_in`` (see :data:`TOPDOWN_TEST_PADDING` for why it is not the references' MSPN/RSN
(1.09, 1.135) or CPN (1.2, 1.3); ``padding="reference"`` selects those). CPN's reference also
clamps the crop to the mean-padded image; that only matters for boxes reaching beyond
``max(H, W)`` outside the image and is not reproduced.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ..codecs.topdown import TopDownHeatmapCodec, build_codec
from ..data.topdown_transforms import (
    CPN_TEST_PADDING,
    MSPN_TEST_PADDING,
    box_to_center_scale,
    invert_affine,
    warp_image,
)
from ..errors import InputError
from ..structures import Person, clip_keypoints

__all__ = [
    "InputConvention",
    "CPN_INPUT",
    "MSPN_INPUT",
    "TOPDOWN_MODEL_SPECS",
    "TopDownModelSpec",
    "TopDownPipeline",
    "boxes_xywh_to_xyxy",
    "crop_affines",
    "default_input_convention",
    "default_padding",
    "TOPDOWN_TEST_PADDING",
    "heatmaps_to_people",
    "select_heatmap",
]

LOG = logging.getLogger(__name__)


# ------------------------------------------------------------------------ conventions
@dataclass(frozen=True)
class InputConvention:
    """How a family's network expects its input crop.

    Attributes:
        channel_order: ``"bgr"`` or ``"rgb"``: channel order of the network input.
        pixel_mean: (3,) 0..255 values in ``channel_order``, subtracted.
        pixel_std: (3,) 0..255 values in ``channel_order``, divided by.
        border_value: (3,) BGR 0..255 fill of crop pixels outside the image.
    """

    channel_order: str
    pixel_mean: tuple[float, float, float]
    pixel_std: tuple[float, float, float]
    border_value: tuple[float, float, float]


# PyTorch CPN: RGB in [0, 1] minus mean RGB (122.7717, 115.9465, 102.9801) / 255, no std;
# the image is padded with the pixel mean before cropping (SPEC 4.1).
CPN_INPUT = InputConvention(
    channel_order="rgb",
    pixel_mean=(122.7717, 115.9465, 102.9801),
    pixel_std=(255.0, 255.0, 255.0),
    border_value=(102.9801, 115.9465, 122.7717),
)
# MSPN / RSN: BGR ToTensor + Normalize(mean (0.406, 0.456, 0.485), std (0.225, 0.224, 0.229))
# (SPEC 5.1), constant-0 warp border.
MSPN_INPUT = InputConvention(
    channel_order="bgr",
    pixel_mean=(0.406 * 255, 0.456 * 255, 0.485 * 255),
    pixel_std=(0.225 * 255, 0.224 * 255, 0.229 * 255),
    border_value=(0.0, 0.0, 0.0),
)


def _family(codec: TopDownHeatmapCodec) -> str:
    return codec.name.split("_", 1)[0]


#: Default test-time box extension (f_w, f_h) of every family (HRNet / SimpleBaseline's 1.25).
#: Measured with the top-down oracle (GT boxes, shared val subset, 256x192, clean decode):
#: MSPN AP 0.945 at the MSPN reference (1.09, 1.135), 0.955 at CPN's (1.2, 1.3), 0.965 at
#: (1.25, 1.25). Every loss left is a labelled keypoint outside the crop (occluded hips and
#: legs below a box drawn around the visible upper body): with perfect maps the in-crop
#: keypoints reach OKS > 0.95 for all but one person. 1.25 lies inside MSPN's training
#: extension range (SPEC 5.1), but its effect on trained weights is not measured here.
TOPDOWN_TEST_PADDING = (1.25, 1.25)


def default_padding(codec: TopDownHeatmapCodec, padding=None) -> tuple[float, float]:
    """Resolve a ``padding`` option into ``(f_w, f_h)``.

    ``None``: :data:`TOPDOWN_TEST_PADDING`; ``"reference"``: the codec family's reference test
    extension (CPN (1.2, 1.3), MSPN/RSN (1.09, 1.135)); a number or pair: itself.
    """
    if padding is None:
        return TOPDOWN_TEST_PADDING
    if isinstance(padding, str):
        if padding != "reference":
            raise InputError(f"padding must be None, 'reference' or (f_w, f_h), got {padding!r}")
        return CPN_TEST_PADDING if _family(codec) == "cpn" else MSPN_TEST_PADDING
    pad = np.broadcast_to(np.asarray(padding, dtype=np.float64), (2,))
    if not (np.isfinite(pad).all() and (pad > 0).all()):
        raise InputError(f"padding must be positive, got {padding!r}")
    return (float(pad[0]), float(pad[1]))


def default_input_convention(codec: TopDownHeatmapCodec) -> InputConvention:
    """The training input convention of the codec's family: CPN -> :data:`CPN_INPUT`, MSPN /
    RSN -> :data:`MSPN_INPUT`."""
    return CPN_INPUT if _family(codec) == "cpn" else MSPN_INPUT


# ---------------------------------------------------------------- model output adapters
def select_heatmap(output):
    """The heatmap the decoder reads from any top-down model's forward output.

    * CPN: ``(global_outs list, refine_out)`` -> ``refine_out``;
    * MSPN / RSN in eval mode: the final heatmap tensor itself; with ``return_stages``:
      ``(heatmap, stages)`` -> ``heatmap``.

    Returns the (N, K, H_out, W_out) tensor.
    """
    if isinstance(output, (tuple, list)) and len(output) == 2:
        first, second = output
        if isinstance(first, (tuple, list)):  # CPN: (global_outs, refine_out)
            return second
        if isinstance(second, (tuple, list)):  # MSPN/RSN with stages: (heatmap, stages)
            return first
    if hasattr(output, "shape") and len(output.shape) == 4:
        return output
    raise InputError(
        f"cannot find the final heatmap in a model output of type {type(output).__name__}; "
        "pass output_adapter= to TopDownPipeline"
    )


@dataclass(frozen=True)
class TopDownModelSpec:
    """Registry entry: which codec family decodes a model and how to read its output."""

    codec_family: str
    output_adapter: Callable = select_heatmap


#: model registry name -> codec family (+ output adapter). The input size comes from the
#: checkpoint's ``model_kwargs["input_size"]`` (builders default to (256, 192)).
TOPDOWN_MODEL_SPECS: dict[str, TopDownModelSpec] = {
    "cpn50": TopDownModelSpec("cpn"),
    "cpn101": TopDownModelSpec("cpn"),
    "mspn": TopDownModelSpec("mspn"),
    "rsn18": TopDownModelSpec("rsn"),
    "rsn50": TopDownModelSpec("rsn"),
}


# ------------------------------------------------------------------------- geometry
def boxes_xywh_to_xyxy(boxes_xywh) -> np.ndarray:
    """(N, 4) ``(x, y, w, h)`` -> (N, 4) ``(x1, y1, x2, y2)``, original px."""
    b = np.asarray(boxes_xywh, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], axis=1)


def crop_affines(
    boxes_xywh, codec: TopDownHeatmapCodec, padding=None
) -> tuple[np.ndarray, np.ndarray]:
    """The crop matrices of boxes, exactly as :class:`TopDownPipeline` cuts its crops.

    Args:
        boxes_xywh: (N, 4) ``(x, y, w, h)`` in original px (w, h > 0).
        codec: gives the input size ``(W_in, H_in)``.
        padding: ``(f_w, f_h)`` box extension before the aspect fix, ``None`` (default
            (1.25, 1.25)) or ``"reference"`` (see :func:`default_padding`).

    Returns:
        matrices: (N, 2, 3) float64, original px -> input px.
        inverses: (N, 2, 3) float64, input px -> original px.
    """
    b = np.asarray(boxes_xywh, dtype=np.float64).reshape(-1, 4)
    pad = default_padding(codec, padding)
    w_in, h_in = codec.input_size
    centers, scales = box_to_center_scale(b, w_in / h_in, pad)
    if b.shape[0] == 0:
        return np.zeros((0, 2, 3)), np.zeros((0, 2, 3))
    # Closed-form similarity (no rotation): x_in = k (x - c_x) + W_in / 2, k = W_in / s_w.
    # Same as get_affine_transform(c, s, 0, (W_in, H_in)), vectorised over boxes.
    k = w_in / scales[:, 0]
    mats = np.zeros((b.shape[0], 2, 3))
    mats[:, 0, 0] = k
    mats[:, 1, 1] = k
    mats[:, 0, 2] = w_in / 2.0 - k * centers[:, 0]
    mats[:, 1, 2] = h_in / 2.0 - k * centers[:, 1]
    return mats, invert_affine(mats)


# --------------------------------------------------------------------------- decode
def heatmaps_to_people(
    codec: TopDownHeatmapCodec,
    heatmaps,
    inverse_affines,
    boxes_xyxy,
    box_scores,
    flip_heatmaps=None,
    image_size=None,
) -> list[Person]:
    """Decode crop heatmaps into people in original px (the step shared by the pipeline and
    the top-down oracle).

    Args:
        codec: the decoder (argmax refinement, stride, score convention).
        heatmaps: (N, K, H_out, W_out) maps of the N crops (numpy or torch; peak 255 scale).
        inverse_affines: (N, 2, 3) input px -> original px matrices of the crops.
        boxes_xyxy: (N, 4) the person boxes ``(x1, y1, x2, y2)`` in original px, stored as
            :attr:`Person.box`.
        box_scores: (N,) detector (or ground-truth: 1) scores.
        flip_heatmaps: optional (N, K, H_out, W_out) maps of the mirrored crops (mirror
            ``x -> W_in - x``, see the module docstring); flipped back and averaged in by the
            codec.
        image_size: optional ``(W, H)`` of the image: keypoints are clipped to it
            (:func:`~simplepose.structures.clip_keypoints`).

    Returns:
        N :class:`Person` s: ``keypoints`` (K, 3) = (x, y original px, keypoint score
        ``h / 255 + 0.5``), ``score`` = box score x mean keypoint score (SPEC 4.6 / 5.6),
        ``box`` = the given box.
    """
    boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(box_scores, dtype=np.float64).reshape(-1)
    n = boxes.shape[0]
    if scores.shape[0] != n:
        raise InputError(f"heatmaps_to_people: {n} boxes but {scores.shape[0]} box scores")
    if n == 0:
        return []
    inv = np.asarray(inverse_affines, dtype=np.float64).reshape(n, 2, 3)
    coords, kp_scores = codec.decode(heatmaps, flip_heatmaps=flip_heatmaps, inverse_affine=inv)
    if coords.shape[0] != n:
        raise InputError(f"heatmaps_to_people: {n} boxes but {coords.shape[0]} heatmaps")
    person_scores = scores * kp_scores.mean(axis=1)
    if image_size is not None:
        coords = clip_keypoints(coords, *image_size)
    kps = np.concatenate([coords, kp_scores[:, :, None]], axis=2)
    return [
        Person(keypoints=kps[i], score=float(person_scores[i]), box=boxes[i].copy())
        for i in range(n)
    ]


def _oks_nms_people(people: list[Person], thresh: float) -> list[Person]:
    """HRNet-style OKS-NMS over one image's people (areas = box areas)."""
    if len(people) < 2:
        return people
    from ..evaluation.nms import oks_nms

    kpts = np.stack([p.keypoints for p in people])
    scores = np.array([p.score for p in people])
    boxes = np.stack([p.box for p in people])
    wh = np.clip(boxes[:, 2:] - boxes[:, :2], 0, None)
    areas = wh[:, 0] * wh[:, 1]
    keep = oks_nms(kpts, scores, areas, thresh=thresh)
    return [people[i] for i in keep]


# ------------------------------------------------------------------------- pipeline
class TopDownPipeline:
    """Boxes + image -> people, for CPN / MSPN / RSN.

    Args:
        model: a top-down ``nn.Module`` (moved to ``device`` and put in eval mode).
        codec: the model's :class:`TopDownHeatmapCodec` (``build_codec("rsn_256x192")``, ...).
        device: torch device of the forward pass.
        flip: average with the flipped-back heatmaps of the mirrored crop.
        batch_size: crops per forward pass (a flipped crop counts as one more).
        padding: ``(f_w, f_h)`` box extension before the aspect fix; ``None`` =
            :data:`TOPDOWN_TEST_PADDING` (1.25, 1.25); ``"reference"`` = the family's reference
            test extension (MSPN/RSN (1.09, 1.135), CPN (1.2, 1.3)).
        pixel_mean, pixel_std: (3,) 0..255 in the network's channel order; ``None`` = the
            family's training convention (see the module docstring).
        channel_order: ``"bgr"`` / ``"rgb"``; ``None`` = family default.
        border_value: BGR fill outside the image; ``None`` = family default.
        use_oks_nms: run OKS-NMS over each image's people (off in every reference).
        oks_thresh: OKS-NMS threshold (HRNet 0.9).
        reference_flip: mirror the crop with ``crop[:, ::-1]`` as the references do (0.5 input
            px bias), instead of the exact mirror ``x -> W_in - x``.
        output_adapter: forward output -> (N, K, H_out, W_out) heatmap; default
            :func:`select_heatmap`.
    """

    def __init__(
        self,
        model,
        codec: TopDownHeatmapCodec,
        device="cpu",
        flip: bool = True,
        batch_size: int = 32,
        padding: Sequence[float] | None = None,
        pixel_mean: Sequence[float] | None = None,
        pixel_std: Sequence[float] | None = None,
        channel_order: str | None = None,
        border_value: Sequence[float] | None = None,
        use_oks_nms: bool = False,
        oks_thresh: float = 0.9,
        reference_flip: bool = False,
        output_adapter: Callable | None = None,
    ):
        import torch

        if not isinstance(codec, TopDownHeatmapCodec):
            raise InputError(f"codec must be a TopDownHeatmapCodec, got {type(codec).__name__}")
        if int(batch_size) < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}")
        conv = default_input_convention(codec)
        self.codec = codec
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.flip = bool(flip)
        self.batch_size = int(batch_size)
        self.padding = default_padding(codec, padding)
        self.channel_order = (channel_order or conv.channel_order).lower()
        if self.channel_order not in ("bgr", "rgb"):
            raise InputError(f"channel_order must be 'bgr' or 'rgb', got {channel_order!r}")
        self.pixel_mean = np.asarray(conv.pixel_mean if pixel_mean is None else pixel_mean,
                                     dtype=np.float32).reshape(3)  # fmt: skip
        self.pixel_std = np.asarray(conv.pixel_std if pixel_std is None else pixel_std,
                                    dtype=np.float32).reshape(3)  # fmt: skip
        if not (self.pixel_std > 0).all():
            raise InputError(f"pixel_std must be positive, got {self.pixel_std.tolist()}")
        self.border_value = tuple(
            float(v) for v in (conv.border_value if border_value is None else border_value)
        )
        self.use_oks_nms = bool(use_oks_nms)
        self.oks_thresh = float(oks_thresh)
        self.reference_flip = bool(reference_flip)
        self.output_adapter = output_adapter or select_heatmap
        self._mean_t = torch.as_tensor(self.pixel_mean, device=self.device).view(1, 3, 1, 1)
        self._std_t = torch.as_tensor(self.pixel_std, device=self.device).view(1, 3, 1, 1)

    # ---------------------------------------------------------------- builders
    @classmethod
    def from_model(cls, model, model_name: str, model_kwargs: dict | None = None, **kw):
        """Pipeline for a registry model (``"cpn50"``, ``"mspn"``, ``"rsn18"``, ...).

        The codec is ``{family}_{H}x{W}`` with ``(H, W) = model_kwargs["input_size"]``
        (default (256, 192)); ``kw`` go to the constructor (``codec=`` overrides the codec).
        """
        spec = TOPDOWN_MODEL_SPECS.get(model_name)
        if spec is None:
            raise InputError(
                f"{model_name!r} is not a top-down model; known: {sorted(TOPDOWN_MODEL_SPECS)}"
            )
        codec = kw.pop("codec", None)
        if codec is None:
            hw = (model_kwargs or {}).get("input_size") or (256, 192)
            codec = build_codec(f"{spec.codec_family}_{int(hw[0])}x{int(hw[1])}")
        kw.setdefault("output_adapter", spec.output_adapter)
        return cls(model, codec, **kw)

    @classmethod
    def from_checkpoint(cls, path, device="cpu", **kw) -> "TopDownPipeline":
        """Load a simplepose checkpoint (:func:`simplepose.checkpoint.load_model`) of a
        top-down model and build its pipeline; ``kw`` as in the constructor."""
        from ..checkpoint import load_model

        model, meta = load_model(path, map_location="cpu")
        return cls.from_model(
            model, meta["simplepose_model"], meta.get("model_kwargs", {}), device=device, **kw
        )

    # ------------------------------------------------------------------ stages
    def crop(self, image_bgr: np.ndarray, matrices: np.ndarray):
        """Cut the crops of one image.

        Args:
            image_bgr: (H, W, 3) uint8 BGR, original px.
            matrices: (N, 2, 3) original px -> input px.

        Returns:
            crops: (N, H_in, W_in, 3) uint8 BGR, input px.
            flipped: (N, H_in, W_in, 3) mirrored crops (column ``u`` shows input px
                ``W_in - u``, or ``W_in - 1 - u`` with ``reference_flip``), or None without flip.
        """
        w_in, h_in = self.codec.input_size
        n = matrices.shape[0]
        crops = np.empty((n, h_in, w_in, 3), dtype=np.uint8)
        flipped = np.empty_like(crops) if self.flip else None
        wide = self.flip and not self.reference_flip
        for i in range(n):
            c = warp_image(image_bgr, matrices[i], (w_in + 1 if wide else w_in, h_in),
                           border_value=self.border_value)  # fmt: skip
            crops[i] = c[:, :w_in]
            if self.flip:
                # exact: flipped[:, u] = c[:, W_in - u]; reference: c[:, W_in - 1 - u]
                flipped[i] = c[:, w_in:0:-1] if wide else c[:, ::-1]
        return crops, flipped

    def _to_tensor(self, crops: np.ndarray):
        import torch

        x = torch.from_numpy(np.ascontiguousarray(crops)).to(self.device)
        x = x.permute(0, 3, 1, 2).float()
        if self.channel_order == "rgb":
            x = x.flip(1)
        return (x - self._mean_t) / self._std_t

    def forward(self, crops: np.ndarray) -> np.ndarray:
        """(N, H_in, W_in, 3) uint8 BGR crops -> (N, K, H_out, W_out) float32 heatmaps, batched."""
        import torch

        if self.model.training:
            self.model.eval()
        outs = []
        with torch.no_grad():
            for s in range(0, crops.shape[0], self.batch_size):
                out = self.output_adapter(self.model(self._to_tensor(crops[s:s + self.batch_size])))
                outs.append(out.float().cpu().numpy())
        ho, wo = self.codec.heatmap_hw
        if not outs:
            return np.zeros((0, self.codec.num_keypoints, ho, wo), np.float32)
        maps = np.concatenate(outs)
        if maps.shape[1:] != (self.codec.num_keypoints, ho, wo):
            raise InputError(
                f"model output {maps.shape[1:]} does not match codec {self.codec.name} "
                f"({self.codec.num_keypoints}, {ho}, {wo})"
            )
        return maps

    # --------------------------------------------------------------------- API
    def predict(self, image_bgr: np.ndarray, boxes_xywh, box_scores=None) -> list[Person]:
        """People in one image.

        Args:
            image_bgr: (H, W, 3) uint8 BGR (as ``cv2.imread`` / ``load_image`` return).
            boxes_xywh: (N, 4) person boxes ``(x, y, w, h)`` in original px; they are
                clipped to the image, and boxes with non-finite values, no overlap with the
                image or a side under 1 px after clipping are dropped (warning).
            box_scores: (N,) box confidences (default 1).

        Returns:
            One :class:`Person` per kept box (fewer with ``use_oks_nms``), keypoints in
            original px inside the image, ``box`` = the clipped box as ``(x1, y1, x2, y2)``.
        """
        from ..data.topdown_transforms import sanitize_boxes

        if not isinstance(image_bgr, np.ndarray) or image_bgr.ndim != 3 or image_bgr.shape[2] != 3:
            got = image_bgr.shape if isinstance(image_bgr, np.ndarray) else type(image_bgr).__name__
            raise InputError(f"TopDownPipeline.predict: need an (H, W, 3) BGR image, got {got}")
        b = np.asarray(boxes_xywh, dtype=np.float64).reshape(-1, 4)
        s = np.ones(b.shape[0]) if box_scores is None else np.asarray(box_scores, np.float64)
        height, width = image_bgr.shape[:2]
        b, s, _ = sanitize_boxes(b, s.reshape(-1), image_size=(width, height), clip=True)
        if b.shape[0] == 0:
            return []
        mats, invs = crop_affines(b, self.codec, self.padding)
        crops, flipped = self.crop(image_bgr, mats)
        if self.flip:
            maps = self.forward(np.concatenate([crops, flipped]))
            heat, heat_flip = maps[: len(crops)], maps[len(crops):]
        else:
            heat, heat_flip = self.forward(crops), None
        people = heatmaps_to_people(self.codec, heat, invs, boxes_xywh_to_xyxy(b), s, heat_flip,
                                    image_size=(width, height))
        if self.use_oks_nms:
            people = _oks_nms_people(people, self.oks_thresh)
        return people

    def predict_with_detector(self, image_bgr: np.ndarray, detector) -> list[Person]:
        """Detect people with ``detector`` (:class:`~simplepose.detect.PersonDetector`:
        ``detect(image) -> (boxes xyxy, scores)``), then :meth:`predict` on its boxes."""
        xyxy, scores = detector.detect(image_bgr)
        xyxy = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
        boxes = np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], axis=1)
        return self.predict(image_bgr, boxes, np.asarray(scores, dtype=np.float64))

    def __repr__(self) -> str:
        return (f"TopDownPipeline(codec={self.codec.name}, flip={self.flip}, "
                f"padding={self.padding}, channel_order={self.channel_order!r}, "
                f"device={self.device})")  # fmt: skip
