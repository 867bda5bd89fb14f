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

Input normalisation follows the training convention of each family (the model spec's
:class:`~simplepose.spec.InputNorm`; a pipeline built from a bare codec takes the one of the
registered spec of the codec's family):

* CPN (PyTorch CPN, SPEC 4.1, which our CPN weights follow): **RGB**, ``x / 255`` minus the
  RGB pixel mean / 255, no std; the crop border is filled with the pixel mean (the reference
  pads the image with its mean before cropping);
* MSPN / RSN (SPEC 5.1): **BGR**, ``x / 255``, ImageNet mean (0.406, 0.456, 0.485) and std
  (0.225, 0.224, 0.229) in BGR order; the crop border is 0 (``cv2.warpAffine`` constant 0).

Both are stored as 0..255 ``mean`` / ``std`` in the network's channel order, plus
``channel_order`` ("rgb" / "bgr"); the network input is ``(crop - mean) / std``.

Steps (the interface shared with :class:`~simplepose.inference.bottomup.BottomUpPipeline`):
:meth:`TopDownPipeline.prepare` (boxes -> crop matrices -> crops, :class:`TopDownInputs`),
:meth:`~TopDownPipeline.forward` (crops -> heatmaps; the only step that touches the network)
and :meth:`~TopDownPipeline.decode` (heatmaps -> people in original px).

Crop padding: (1.25, 1.25) by default for every family, then the aspect is fixed to
``W_in / H_in`` (see :data:`simplepose.spec.TOPDOWN_TEST_PADDING` for why it is not the
references' MSPN/RSN (1.09, 1.135) or CPN (1.2, 1.3); ``padding="reference"`` selects those).
CPN's reference also clamps the crop to the mean-padded image; that only matters for boxes
reaching beyond ``max(H, W)`` outside the image and is not reproduced.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..codecs.topdown import TopDownHeatmapCodec
from ..data.topdown_transforms import box_to_center_scale, warp_image
from ..errors import InputError
from ..geometry import invert_affine, xywh_to_xyxy
from ..spec import TOPDOWN_TEST_PADDING, InputNorm, PoseModelSpec, registered_specs
from ..structures import Person, clip_keypoints
from ..utils.image import check_image

__all__ = [
    "TopDownInputs",
    "TopDownPipeline",
    "crop_affines",
    "default_input_norm",
    "default_padding",
    "heatmaps_to_people",
]

LOG = logging.getLogger(__name__)


# ------------------------------------------------------------------ family defaults
def _family_spec(codec: TopDownHeatmapCodec) -> PoseModelSpec:
    """The first registered top-down spec whose codec family is the codec's."""
    family = codec.name.split("_", 1)[0]
    for spec in registered_specs():
        if spec.paradigm == "topdown" and spec.codec_family == family:
            return spec
    raise InputError(f"no registered top-down model uses {family} codecs ({codec.name}); "
                     "pass the input normalisation and padding explicitly")


def default_padding(codec: TopDownHeatmapCodec, padding=None,
                    reference=None) -> tuple[float, float]:
    """Resolve a ``padding`` option into ``(f_w, f_h)``.

    ``None``: :data:`~simplepose.spec.TOPDOWN_TEST_PADDING`; ``"reference"``: ``reference``, or
    when None the reference test extension of the codec's family (CPN (1.2, 1.3), MSPN/RSN
    (1.09, 1.135), from the registered model specs); a number or pair: itself.
    """
    if padding is None:
        return TOPDOWN_TEST_PADDING
    if isinstance(padding, str):
        if padding != "reference":
            raise InputError(f"padding must be None, 'reference' or (f_w, f_h), got {padding!r}")
        padding = reference if reference is not None else \
            _family_spec(codec).inference["reference_padding"]
    pad = np.broadcast_to(np.asarray(padding, dtype=np.float64), (2,))
    if not (np.isfinite(pad).all() and (pad > 0).all()):
        raise InputError(f"padding must be positive, got {padding!r}")
    return (float(pad[0]), float(pad[1]))


def default_input_norm(codec: TopDownHeatmapCodec) -> InputNorm:
    """The training input normalisation of the codec's family (CPN ->
    :data:`~simplepose.spec.CPN_INPUT`, MSPN / RSN -> :data:`~simplepose.spec.MSPN_INPUT`),
    from the registered model specs."""
    return _family_spec(codec).input


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
    from ..decode.nms import oks_nms
    from ..skeleton import similarity_sigmas_for

    kpts = np.stack([p.keypoints for p in people])
    scores = np.array([p.score for p in people])
    boxes = np.stack([p.box for p in people])
    wh = np.clip(boxes[:, 2:] - boxes[:, :2], 0, None)
    areas = wh[:, 0] * wh[:, 1]
    # the layout's sigmas (MPII defines none: borrowed by keypoint name, see the function)
    keep = oks_nms(kpts, scores, areas, thresh=thresh, sigmas=similarity_sigmas_for(kpts.shape[1]))
    return [people[i] for i in keep]


# ------------------------------------------------------------------------- pipeline
@dataclass
class TopDownInputs:
    """What :meth:`TopDownPipeline.prepare` hands to ``forward`` and ``decode`` for one image.

    Attributes:
        crops: (M, H_in, W_in, 3) uint8 BGR network inputs, input px: the N crops, then
            (flip test) their N mirrored crops; None for a geometry-only plan
            (:meth:`TopDownPipeline.plan`).
        inverses: (N, 2, 3) input px -> original px matrices of the crops.
        matrices: (N, 2, 3) original px -> input px.
        boxes_xyxy: (N, 4) the kept person boxes, original px.
        scores: (N,) their scores.
        flip: whether the second half of the network outputs are mirrored crops.
        image_wh: ``(W, H)`` of the image (keypoints are clipped to it); None for a plan.
    """

    crops: np.ndarray | None
    inverses: np.ndarray
    matrices: np.ndarray
    boxes_xyxy: np.ndarray
    scores: np.ndarray
    flip: bool
    image_wh: tuple[int, int] | None = None

    @property
    def num_boxes(self) -> int:
        return int(self.boxes_xyxy.shape[0])


class TopDownPipeline:
    """Boxes + image -> people, for CPN / MSPN / RSN.

    Args:
        model: a top-down ``nn.Module`` (moved to ``device`` and put in eval mode), or None
            for a pipeline that only plans and decodes (the top-down oracle).
        codec: the model's :class:`TopDownHeatmapCodec` (``build_codec("rsn_256x192")``, ...).
        device: torch device of the forward pass.
        flip: average with the flipped-back heatmaps of the mirrored crop.
        batch_size: crops per forward pass (a flipped crop counts as one more).
        padding: ``(f_w, f_h)`` box extension before the aspect fix; ``None`` =
            :data:`~simplepose.spec.TOPDOWN_TEST_PADDING` (1.25, 1.25); ``"reference"`` = the
            family's reference test extension (MSPN/RSN (1.09, 1.135), CPN (1.2, 1.3)).
        input_norm: the input normalisation (:class:`~simplepose.spec.InputNorm`); ``None`` =
            the family's training convention (see the module docstring).
        use_oks_nms: run OKS-NMS over each image's people (off in every reference).
        oks_thresh: OKS-NMS threshold (HRNet 0.9).
        reference_flip: mirror the crop with ``crop[:, ::-1]`` as the references do (0.5 input
            px bias), instead of the exact mirror ``x -> W_in - x``.
        output_adapter: forward output -> (N, K, H_out, W_out) heatmap; default
            :func:`~simplepose.spec.select_heatmap`.
        reference_padding: what ``padding="reference"`` means (default: the family's).
        shift_ratios: the decoder's sub-cell shifts, heatmap px (``codec.shift_ratios``; e.g.
            ``(0.25, 0.1)`` for MSPN's multi-shift test); ``None`` keeps the codec's.
    """

    def __init__(
        self,
        model,
        codec: TopDownHeatmapCodec,
        device="cpu",
        flip: bool = True,
        batch_size: int = 32,
        padding: Sequence[float] | str | None = None,
        input_norm: InputNorm | None = None,
        use_oks_nms: bool = False,
        oks_thresh: float = 0.9,
        reference_flip: bool = False,
        output_adapter: Callable | None = None,
        reference_padding: Sequence[float] | None = None,
        shift_ratios: Sequence[float] | None = None,
    ):
        import torch

        from ..spec import select_heatmap

        if not isinstance(codec, TopDownHeatmapCodec):
            raise InputError(f"codec must be a TopDownHeatmapCodec, got {type(codec).__name__}")
        if int(batch_size) < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}")
        if shift_ratios is not None:
            codec = codec.with_options(shift_ratios=shift_ratios)
        norm = input_norm if input_norm is not None else default_input_norm(codec)
        if not isinstance(norm, InputNorm):
            raise InputError(f"input_norm must be an InputNorm, got {type(norm).__name__}")
        self.codec = codec
        self.device = torch.device(device)
        self.model = model.to(self.device).eval() if model is not None else None
        self.flip = bool(flip)
        self.batch_size = int(batch_size)
        self.padding = default_padding(codec, padding, reference_padding)
        self.input_norm = norm
        self.use_oks_nms = bool(use_oks_nms)
        self.oks_thresh = float(oks_thresh)
        self.reference_flip = bool(reference_flip)
        self.output_adapter = output_adapter or select_heatmap
        mean = np.asarray(norm.mean, dtype=np.float32).reshape(3)
        std = np.asarray(norm.std, dtype=np.float32).reshape(3)
        self._mean_t = torch.as_tensor(mean, device=self.device).view(1, 3, 1, 1)
        self._std_t = torch.as_tensor(std, device=self.device).view(1, 3, 1, 1)

    @property
    def channel_order(self) -> str:
        return self.input_norm.channel_order

    @property
    def border_value(self) -> tuple[float, float, float]:
        return self.input_norm.fill

    # ---------------------------------------------------------------- builders
    @classmethod
    def from_spec(cls, model, spec: PoseModelSpec, **kw) -> TopDownPipeline:
        """The pipeline of a top-down model spec: its codec, input normalisation, output
        adapter and default padding; ``kw`` override the constructor arguments."""
        if spec.paradigm != "topdown":
            raise InputError(f"{spec.name!r} is a {spec.paradigm} model, not a top-down one")
        kw.setdefault("padding", spec.inference.get("padding"))
        kw.setdefault("reference_padding", spec.inference.get("reference_padding"))
        kw.setdefault("input_norm", spec.input)
        kw.setdefault("output_adapter", spec.select_output)
        codec = kw.pop("codec", None) or spec.build_codec()
        return cls(model, codec, **kw)

    @classmethod
    def from_checkpoint(cls, path, device="cpu", **kw) -> TopDownPipeline:
        """Load a simplepose checkpoint (:func:`simplepose.checkpoint.load_model`) of a
        top-down model and build its pipeline from the spec it carries; ``kw`` as in the
        constructor."""
        from ..checkpoint import load_model

        model, meta = load_model(path, map_location="cpu")
        return cls.from_spec(model, meta["spec"], device=device, **kw)

    # ------------------------------------------------------------------ steps
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

    def plan(self, boxes_xywh, box_scores=None, sanitize: bool = True,
             image_wh=None) -> TopDownInputs:
        """The crop geometry of ``boxes_xywh`` without pixels (``crops`` None): what
        :meth:`prepare` computes before cutting, and what the top-down oracle decodes.

        With ``sanitize``, boxes with non-finite values or non-positive size are dropped
        (warning); the oracle keeps every ground-truth box. With ``image_wh`` (``(W, H)``) the
        boxes are also clipped to the image and those left under 1 px wide or high, or
        outside it, are dropped; decoded keypoints are then clipped to the image too.
        """
        from ..data.topdown_transforms import sanitize_boxes

        b = np.asarray(boxes_xywh, dtype=np.float64).reshape(-1, 4)
        s = np.ones(b.shape[0]) if box_scores is None else np.asarray(box_scores, np.float64)
        s = s.reshape(-1)
        if sanitize:
            clip = image_wh is not None
            b, s, _ = sanitize_boxes(b, s, image_size=image_wh, clip=clip)
        mats, invs = crop_affines(b, self.codec, self.padding)
        wh = None if image_wh is None else (int(image_wh[0]), int(image_wh[1]))
        return TopDownInputs(None, invs, mats, xywh_to_xyxy(b), s, self.flip, wh)

    def prepare(self, image_bgr: np.ndarray, boxes_xywh=None, box_scores=None) -> TopDownInputs:
        """Step 1: the crops of one image's person boxes.

        Args:
            image_bgr: (H, W, 3) uint8 BGR (as ``cv2.imread`` / ``load_image`` return).
            boxes_xywh: (N, 4) person boxes ``(x, y, w, h)`` in original px.
            box_scores: (N,) box confidences (default 1).
        """
        image_bgr = check_image(image_bgr, "TopDownPipeline.predict")
        if boxes_xywh is None:
            raise InputError("TopDownPipeline.prepare needs person boxes (x, y, w, h)")
        height, width = image_bgr.shape[:2]
        plan = self.plan(boxes_xywh, box_scores, image_wh=(width, height))
        crops, flipped = self.crop(image_bgr, plan.matrices)
        plan.crops = np.concatenate([crops, flipped]) if self.flip else crops
        return plan

    def _to_tensor(self, crops: np.ndarray):
        import torch

        x = torch.from_numpy(np.ascontiguousarray(crops)).to(self.device)
        x = x.permute(0, 3, 1, 2).float()
        if self.channel_order == "rgb":
            x = x.flip(1)
        return (x - self._mean_t) / self._std_t

    def forward(self, inputs: TopDownInputs | np.ndarray) -> np.ndarray:
        """Step 2: (M, H_in, W_in, 3) uint8 BGR crops (or a :class:`TopDownInputs`) ->
        (M, K, H_out, W_out) float32 heatmaps, in batches of ``batch_size``."""
        import torch

        crops = inputs.crops if isinstance(inputs, TopDownInputs) else inputs
        if crops is None:
            raise InputError("TopDownPipeline.forward: these inputs have no crops (a plan)")
        if self.model is None:
            raise InputError("TopDownPipeline.forward: this pipeline has no model")
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

    def decode(self, inputs: TopDownInputs, heatmaps: np.ndarray) -> list[Person]:
        """Step 3: heatmaps of :meth:`forward` (crops, then mirrored crops when
        ``inputs.flip``) -> one :class:`Person` per box (fewer with ``use_oks_nms``)."""
        n = inputs.num_boxes
        if n == 0:
            return []
        if inputs.flip:
            heat, heat_flip = heatmaps[:n], heatmaps[n:]
        else:
            heat, heat_flip = heatmaps, None
        people = heatmaps_to_people(self.codec, heat, inputs.inverses, inputs.boxes_xyxy,
                                    inputs.scores, heat_flip, image_size=inputs.image_wh)
        if self.use_oks_nms:
            people = _oks_nms_people(people, self.oks_thresh)
        return people

    # --------------------------------------------------------------------- API
    def predict(self, image_bgr: np.ndarray, boxes_xywh, box_scores=None) -> list[Person]:
        """People in one image: :meth:`prepare`, :meth:`forward`, :meth:`decode`.

        Args:
            image_bgr: (H, W, 3) uint8 BGR (as ``cv2.imread`` / ``load_image`` return).
            boxes_xywh: (N, 4) person boxes ``(x, y, w, h)`` in original px; they are
                clipped to the image, and boxes with non-finite values, no overlap with the
                image or a side under 1 px after clipping are dropped (warning).
            box_scores: (N,) box confidences (default 1).

        Returns:
            One :class:`Person` per kept box (fewer with ``use_oks_nms``), keypoints in
            original px, ``box`` = the clipped box as ``(x1, y1, x2, y2)``.
        """
        inputs = self.prepare(image_bgr, boxes_xywh, box_scores)
        if inputs.num_boxes == 0:
            return []
        return self.decode(inputs, self.forward(inputs))

    def __repr__(self) -> str:
        return (f"TopDownPipeline(codec={self.codec.name}, flip={self.flip}, "
                f"padding={self.padding}, channel_order={self.channel_order!r}, "
                f"device={self.device})")  # fmt: skip
