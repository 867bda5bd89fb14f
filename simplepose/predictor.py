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
from typing import Sequence

import numpy as np

from .errors import InputError
from .structures import Person

__all__ = ["Predictor", "select_device", "TOPDOWN_MODELS"]

LOG = logging.getLogger(__name__)

TOPDOWN_MODELS = ("cpn50", "cpn101", "mspn", "rsn18", "rsn50")


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

    Attributes:
        pipeline: the bottom-up or top-down pipeline doing the work.
        mode: ``"bottomup"`` or ``"topdown"``.
        model_name: registry name of the model.
    """

    def __init__(self, pipeline, mode: str, model_name: str, detector=None):
        self.pipeline = pipeline
        self.mode = mode
        self.model_name = model_name
        self.detector = detector

    # ------------------------------------------------------------------ builders
    @classmethod
    def from_pretrained(cls, name: str = "openpose_mobilenet_thin", device: str | None = None, **options) -> "Predictor":
        """A model with weights bundled in the package (no download)."""
        from .models import build_model

        if name != "openpose_mobilenet_thin":
            raise InputError(f"no bundled weights for {name!r}; bundled: openpose_mobilenet_thin")
        return cls._bottomup(build_model(name, pretrained=True), name, select_device(device), **options)

    @classmethod
    def from_checkpoint(cls, path, device: str | None = None, detector="bundled", **options) -> "Predictor":
        """A simplepose checkpoint (``.safetensors`` written by training or conversion).

        Args:
            path: the checkpoint; its metadata names the model and its configuration.
            device: ``"cpu"``, ``"cuda[:i]"`` or ``None`` (auto).
            detector: top-down only, used when :meth:`predict` gets no boxes: ``"bundled"`` (the
                RTMDet-nano person detector shipped with simplepose), a
                :class:`~simplepose.detect.PersonDetector`, the path of an ONNX file of that
                format, or ``None`` (boxes must then be passed to :meth:`predict`).
            options: pipeline options (bottom-up: ``box_size``, ``scales``, ``flip``, ``params``;
                top-down: ``flip``, ``batch_size``, ...).
        """
        from .checkpoint import load_model

        device = select_device(device)
        model, meta = load_model(path, map_location="cpu")
        name = meta["simplepose_model"]
        layout = checkpoint_layout(meta)
        if name in TOPDOWN_MODELS:
            from .inference.topdown import TopDownPipeline

            pipeline = TopDownPipeline.from_model(
                model, name, meta.get("model_kwargs", {}), device=device, layout=layout, **options
            )
            return cls(pipeline, "topdown", name, detector=_as_detector(detector))
        return cls._bottomup(model, name, device, layout=layout, **options)

    @classmethod
    def _bottomup(cls, model, name: str, device: str, layout="coco17", **options) -> "Predictor":
        import dataclasses

        from .codecs.bottomup import SimplePoseCodec
        from .inference.bottomup import BOTTOMUP_SPECS, BottomUpPipeline
        from .skeleton import bottomup_layout, get_layout

        if name not in BOTTOMUP_SPECS:
            raise InputError(f"model {name!r} has no inference recipe; known: {sorted(BOTTOMUP_SPECS) + list(TOPDOWN_MODELS)}")
        spec = BOTTOMUP_SPECS[name]
        if get_layout(layout).name != "coco17":
            if not isinstance(spec.codec, SimplePoseCodec):
                raise InputError(f"model {name!r} supports only the coco17 layout, not {get_layout(layout).name}")
            codec = dataclasses.replace(spec.codec, layout=bottomup_layout(layout))
            spec = dataclasses.replace(spec, codec=codec)
        return cls(BottomUpPipeline(model, spec, device=device, **options), "bottomup", name)

    # ---------------------------------------------------------------------- API
    def predict(self, image: np.ndarray, boxes: np.ndarray | None = None, box_scores: np.ndarray | None = None) -> list[Person]:
        """People in one BGR uint8 (H, W, 3) image, in original px.

        Top-down models use ``boxes`` (N, 4) x, y, w, h in original px (with ``box_scores``), or
        the detector when no boxes are given. Bottom-up models ignore ``boxes``.
        """
        if self.mode == "bottomup":
            return self.pipeline.predict(image)
        if boxes is None:
            if self.detector is None:
                raise InputError("a top-down model needs boxes or a detector (Predictor.from_checkpoint(..., detector='bundled'))")
            xyxy, scores = self.detector.detect(image)
            boxes = np.column_stack([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]]) if len(xyxy) else np.zeros((0, 4))
            box_scores = scores
        if box_scores is None:
            box_scores = np.ones(len(boxes))
        return self.pipeline.predict(image, np.asarray(boxes, float).reshape(-1, 4), np.asarray(box_scores, float))

    def predict_batch(self, images: Sequence[np.ndarray]) -> list[list[Person]]:
        """People in each image (bottom-up: same-size images share one forward pass)."""
        if self.mode == "bottomup":
            return self.pipeline.predict_batch(list(images))
        return [self.predict(im) for im in images]


def checkpoint_layout(meta: dict) -> str:
    """The keypoint layout a checkpoint was trained on: ``data.layout`` of the training config
    stored in its metadata (COCO-17 when absent, e.g. converted checkpoints)."""
    import json

    config = meta.get("config")
    if isinstance(config, str):
        try:
            config = json.loads(config)
        except json.JSONDecodeError:
            config = None
    data = config.get("data") if isinstance(config, dict) else None
    layout = data.get("layout") if isinstance(data, dict) else None
    return layout if isinstance(layout, str) and layout else "coco17"


def _as_detector(detector):
    if detector is None or hasattr(detector, "detect"):
        return detector
    from .detect import PersonDetector

    return PersonDetector.bundled() if detector == "bundled" else PersonDetector(detector)
