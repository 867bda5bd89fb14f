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
``W_in / H_in`` (see :data:`~simplepose.inference.topdown_constants.TOPDOWN_TEST_PADDING` for
why it is not the references' MSPN/RSN (1.09, 1.135) or CPN (1.2, 1.3); ``padding="reference"``
selects those). CPN's reference also
clamps the crop to the mean-padded image; that only matters for boxes reaching beyond
``max(H, W)`` outside the image and is not reproduced.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np

from ..codecs.topdown import TopDownHeatmapCodec, build_codec
from ..data.topdown_transforms import box_to_center_scale, warp_image
from ..errors import InputError
from ..geometry import invert_affine, xywh_to_xyxy
from ..structures import Person
from ..utils.image import check_image
from .topdown_constants import (
    TOPDOWN_MODEL_SPECS,
    default_input_convention,
    default_padding,
    select_heatmap,
)

__all__ = [
    "TopDownPipeline",
    "crop_affines",
    "heatmaps_to_people",
]

LOG = logging.getLogger(__name__)


# ------------------------------------------------------------------------- geometry
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
    kps = np.concatenate([coords, kp_scores[:, :, None]], axis=2)
    return [
        Person(keypoints=kps[i], score=float(person_scores[i]), box=boxes[i].copy())
        for i in range(n)
    ]


def _oks_nms_people(people: list[Person], thresh: float) -> list[Person]:
    """HRNet-style OKS-NMS over one image's people (areas = box areas)."""
    if len(people) < 2:
        return people
    from ..decode.nms import oks_nms

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
    def from_checkpoint(cls, path, device="cpu", **kw) -> TopDownPipeline:
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
            boxes_xywh: (N, 4) person boxes ``(x, y, w, h)`` in original px; boxes with
                non-finite values or non-positive size are dropped (warning).
            box_scores: (N,) box confidences (default 1).

        Returns:
            One :class:`Person` per kept box (fewer with ``use_oks_nms``), keypoints in
            original px, ``box`` = the input box as ``(x1, y1, x2, y2)``.
        """
        from ..data.topdown_transforms import sanitize_boxes

        image_bgr = check_image(image_bgr, "TopDownPipeline.predict")
        b = np.asarray(boxes_xywh, dtype=np.float64).reshape(-1, 4)
        s = np.ones(b.shape[0]) if box_scores is None else np.asarray(box_scores, np.float64)
        b, s, _ = sanitize_boxes(b, s.reshape(-1))
        if b.shape[0] == 0:
            return []
        mats, invs = crop_affines(b, self.codec, self.padding)
        crops, flipped = self.crop(image_bgr, mats)
        if self.flip:
            maps = self.forward(np.concatenate([crops, flipped]))
            heat, heat_flip = maps[: len(crops)], maps[len(crops):]
        else:
            heat, heat_flip = self.forward(crops), None
        people = heatmaps_to_people(self.codec, heat, invs, xywh_to_xyxy(b), s, heat_flip)
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
