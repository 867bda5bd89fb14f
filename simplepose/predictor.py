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
        if name in TOPDOWN_MODELS:
            from .inference.topdown import TopDownPipeline

            pipeline = TopDownPipeline.from_model(model, name, meta.get("model_kwargs", {}), device=device, **options)
            return cls(pipeline, "topdown", name, detector=_as_detector(detector))
        return cls._bottomup(model, name, device, **options)

    @classmethod
    def _bottomup(cls, model, name: str, device: str, **options) -> "Predictor":
        from .inference.bottomup import BOTTOMUP_SPECS, BottomUpPipeline

        if name not in BOTTOMUP_SPECS:
            raise InputError(f"model {name!r} has no inference recipe; known: {sorted(BOTTOMUP_SPECS) + list(TOPDOWN_MODELS)}")
        return cls(BottomUpPipeline(model, BOTTOMUP_SPECS[name], device=device, **options), "bottomup", name)

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

    def track(self, frames, **options):
        """Tracked people over consecutive frames: a generator of
        :class:`~simplepose.tracking.TrackedFrame` (``index``, ``image``, ``people`` with stable
        ``track_id``, smoothed). ``options`` go to :func:`~simplepose.tracking.track_frames`
        (``realtime=True``: network on keyframes + optical flow; ``live=True`` for cameras).

            for out in predictor.track(frames):
                for person in out.people:
                    print(out.index, person.track_id, person.keypoints)
        """
        from .tracking import track_frames

        return track_frames(self, frames, **options)

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
