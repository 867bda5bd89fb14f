"""``simplepose.Predictor``: image(s) -> people in original px, for every model simplepose knows.

    from simplepose import Predictor
    predictor = Predictor.from_pretrained("openpose_mobilenet_thin")      # bundled weights
    predictor = Predictor.from_checkpoint("runs/imhn/model_final.safetensors")
    predictor = Predictor.from_checkpoint("rsn18.safetensors", detector="rtmdet_nano.onnx")
    people = predictor.predict(cv2.imread("photo.jpg"))                   # list[Person]

Bottom-up checkpoints (IMHN, OpenPose) run :class:`~simplepose.inference.bottomup.BottomUpPipeline`;
top-down ones (CPN, MSPN, RSN) run :class:`~simplepose.inference.topdown.TopDownPipeline` on boxes
from a person detector, or on boxes passed to :meth:`Predictor.predict`.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence

import numpy as np

from .errors import InputError
from .geometry import xywh_to_xyxy, xyxy_to_xywh
from .spec import PoseModelSpec, available_specs, get_spec
from .structures import Person

__all__ = ["Predictor", "select_device"]

LOG = logging.getLogger(__name__)


def select_device(device: str | None = None) -> str:
    """``None``/``"auto"``: CUDA when available, else CPU; otherwise the given device."""
    import torch

    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"device {device!r} requested but CUDA is not available")
    return str(device)


class Predictor:
    """Runs a pose model on BGR uint8 images.

    Every caller (``predict``, the demo's threaded stages, evaluation) drives the same three
    steps: :meth:`prepare` (top-down: boxes from the detector when none are given, then crops;
    bottom-up: resize + pad), :meth:`forward` (the network) and :meth:`decode` (people in
    original px).

    Attributes:
        pipeline: the bottom-up or top-down pipeline doing the work.
        spec: the model's :class:`~simplepose.spec.PoseModelSpec`.
        mode: ``"bottomup"`` or ``"topdown"`` (the spec's paradigm).
        model_name: the spec's name.
        detector: top-down person detector used when :meth:`prepare` gets no boxes, or None.
    """

    def __init__(self, pipeline, spec: PoseModelSpec, detector=None):
        self.pipeline = pipeline
        self.spec = spec
        self.mode = spec.paradigm
        self.model_name = spec.name
        self.detector = detector

    # ------------------------------------------------------------------ builders
    @classmethod
    def from_pretrained(cls, name: str = "openpose_mobilenet_thin", device: str | None = None, **options) -> Predictor:
        """A model with weights bundled in the package (no download)."""
        spec = get_spec(name)
        if not spec.pretrained:
            bundled = [n for n in available_specs() if get_spec(n).pretrained]
            raise InputError(f"no bundled weights for {name!r}; bundled: {', '.join(bundled)}")
        return cls.from_spec(spec, spec.build_model(pretrained=True), device=device, **options)

    @classmethod
    def from_checkpoint(cls, path, device: str | None = None, detector="bundled", **options) -> Predictor:
        """A simplepose checkpoint (``.safetensors`` written by training or conversion).

        Args:
            path: the checkpoint; the model spec it carries rebuilds the model, codec and
                pipeline exactly as training used them.
            device: ``"cpu"``, ``"cuda[:i]"`` or ``None`` (auto).
            detector: top-down only, used when :meth:`predict` gets no boxes: ``"bundled"`` (the
                RTMDet-nano person detector shipped with simplepose), a
                :class:`~simplepose.detect.PersonDetector`, the path of an ONNX file of that
                format, or ``None`` (boxes must then be passed to :meth:`predict`).
            options: pipeline options (bottom-up: ``box_size``, ``scales``, ``flip``, ``params``;
                top-down: ``flip``, ``batch_size``, ...).
        """
        from .checkpoint import load_model

        model, meta = load_model(path, map_location="cpu")
        return cls.from_spec(meta["spec"], model, device=device, detector=detector, **options)

    @classmethod
    def from_spec(cls, spec: PoseModelSpec, model, device: str | None = None, detector="bundled",
                  **options) -> Predictor:
        """The predictor of ``model`` described by ``spec`` (``detector`` as in
        :meth:`from_checkpoint`, top-down only)."""
        device = select_device(device)
        if spec.paradigm == "topdown":
            from .inference.topdown import TopDownPipeline

            pipeline = TopDownPipeline.from_spec(model, spec, device=device, **options)
            return cls(pipeline, spec, detector=_as_detector(detector))
        from .inference.bottomup import BottomUpPipeline

        return cls(BottomUpPipeline(model, spec, device=device, **options), spec)

    # ---------------------------------------------------------------------- steps
    def prepare(self, image: np.ndarray, boxes_xyxy: np.ndarray | None = None,
                box_scores: np.ndarray | None = None):
        """Step 1: the pipeline inputs of one BGR uint8 (H, W, 3) image.

        Top-down models use ``boxes_xyxy`` (N, 4) x1, y1, x2, y2 in original px (with
        ``box_scores`` (N,), default 1), or the detector's when no boxes are given. Bottom-up
        models ignore boxes.
        """
        if self.mode == "bottomup":
            return self.pipeline.prepare(image)
        if boxes_xyxy is None:
            if self.detector is None:
                raise InputError("a top-down model needs boxes or a detector (Predictor.from_checkpoint(..., detector='bundled'))")
            boxes_xyxy, box_scores = self.detector.detect(image)
        xyxy = np.asarray(boxes_xyxy, dtype=float).reshape(-1, 4)
        if box_scores is None:
            box_scores = np.ones(len(xyxy))
        # the pipeline works on COCO (x, y, w, h) boxes
        return self.pipeline.prepare(image, xyxy_to_xywh(xyxy), np.asarray(box_scores, float))

    def forward(self, inputs):
        """Step 2: the network on the inputs of :meth:`prepare`."""
        return self.pipeline.forward(inputs)

    def decode(self, inputs, outputs) -> list[Person]:
        """Step 3: people in original px from the inputs and the network outputs."""
        return self.pipeline.decode(inputs, outputs)

    # ---------------------------------------------------------------------- API
    def predict(self, image: np.ndarray, boxes: np.ndarray | None = None, box_scores: np.ndarray | None = None,
                *, boxes_xyxy: np.ndarray | None = None) -> list[Person]:
        """People in one BGR uint8 (H, W, 3) image, in original px (see :meth:`prepare`).

        ``boxes`` (N, 4) x, y, w, h is the deprecated spelling of earlier releases.
        """
        if boxes is not None:
            warnings.warn("Predictor.predict(boxes=x, y, w, h) is deprecated: pass boxes_xyxy=x1, y1, x2, y2",
                          DeprecationWarning, stacklevel=2)
            if boxes_xyxy is not None:
                raise InputError("pass boxes_xyxy or the deprecated boxes, not both")
            boxes_xyxy = xywh_to_xyxy(np.asarray(boxes, dtype=float).reshape(-1, 4))
        inputs = self.prepare(image, boxes_xyxy, box_scores)
        if self.mode == "topdown" and inputs.num_boxes == 0:
            return []
        return self.decode(inputs, self.forward(inputs))

    def predict_batch(self, images: Sequence[np.ndarray]) -> list[list[Person]]:
        """People in each image (bottom-up: same-size images share one forward pass)."""
        if self.mode == "bottomup":
            return self.pipeline.predict_batch(list(images))
        return [self.predict(im) for im in images]


def _as_detector(detector):
    if detector is None or hasattr(detector, "detect"):
        return detector
    from .detect import PersonDetector

    return PersonDetector.bundled() if detector == "bundled" else PersonDetector(detector)
