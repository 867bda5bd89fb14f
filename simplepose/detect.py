"""Person detector for top-down pose estimation on raw images: RTMDet-nano exported to ONNX.

The model (mmdeploy ``end2end.onnx``, NMS inside) takes ``input`` float32 ``[N, 3, 320, 320]``:
the BGR image resized with its aspect ratio kept so that it fits 320 x 320, placed in the
top-left corner of a canvas filled with 114, then normalised per channel with mean
(103.53, 116.28, 123.675) and std (57.375, 57.12, 58.395) in BGR order. It returns ``dets``
``[N, D, 5]`` = (x1, y1, x2, y2, score) in the letterboxed frame and ``labels`` ``[N, D]``
(0 = person); dividing the boxes by the resize ratio gives original px.

The weights are not shipped with simplepose: the caller always passes the path.
onnxruntime is imported only when a :class:`PersonDetector` is built.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from simplepose.errors import InputError
from simplepose.utils.image import check_image

LOG = logging.getLogger(__name__)

__all__ = ["PersonDetector", "letterbox"]

_MEAN_BGR = np.array([103.53, 116.28, 123.675], dtype=np.float32)
_STD_BGR = np.array([57.375, 57.12, 58.395], dtype=np.float32)
_PAD_VALUE = 114


def letterbox(image_bgr: np.ndarray, size: int = 320) -> tuple[np.ndarray, float]:
    """Resize with the aspect ratio kept into the top-left of a ``size`` x ``size`` canvas of 114.

    Args:
        image_bgr: (H, W, 3) uint8 BGR image, original px.

    Returns:
        ``(canvas (size, size, 3) uint8, ratio)``; letterbox px = original px * ``ratio``.
    """
    import cv2  # lazy

    h, w = image_bgr.shape[:2]
    ratio = min(size / h, size / w)
    new_w, new_h = max(1, int(w * ratio)), max(1, int(h * ratio))
    resized = cv2.resize(image_bgr, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    canvas = np.full((size, size, 3), _PAD_VALUE, dtype=np.uint8)
    canvas[:new_h, :new_w] = resized
    return canvas, ratio


def bundled_detector_path() -> Path:
    """Path of the bundled RTMDet-nano ONNX file (Apache-2.0; see simplepose/weights/NOTICE)."""
    return Path(__file__).resolve().parent / "weights" / "rtmdet_nano_person.onnx"


class PersonDetector:
    """RTMDet-nano person detector running on onnxruntime.

    Args:
        onnx_path: path of ``end2end.onnx`` (required; nothing is downloaded).
        score_threshold: boxes scoring below this are dropped.
        input_size: side of the square network input (320 for the shipped export).
        providers: onnxruntime execution providers; default CPU only.

    Raises:
        FileNotFoundError: the model file does not exist (the message names the path).
        InputError: the file exists but onnxruntime cannot load it, or its inputs / outputs are
            not those of an mmdeploy detection export.
    """

    @classmethod
    def bundled(cls, score_threshold: float = 0.3, **kwargs) -> PersonDetector:
        """The RTMDet-nano person detector shipped in ``simplepose/weights`` (no download)."""
        return cls(bundled_detector_path(), score_threshold=score_threshold, **kwargs)

    def __init__(
        self, onnx_path, score_threshold: float = 0.3, input_size: int = 320, providers=None
    ):
        path = Path(onnx_path)
        if not path.is_file():
            raise FileNotFoundError(f"person detector model not found: {path}")
        try:
            import onnxruntime as ort
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError("PersonDetector needs onnxruntime: pip install onnxruntime") from e
        if not 0.0 <= float(score_threshold) <= 1.0:
            raise InputError(f"score_threshold must be in [0, 1], got {score_threshold}")
        self.onnx_path = path
        self.score_threshold = float(score_threshold)
        self.input_size = int(input_size)
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(
                str(path), sess_options=opts, providers=list(providers or ["CPUExecutionProvider"])
            )
        except Exception as e:  # onnxruntime raises its own exception types
            raise InputError(f"cannot load the ONNX model {path}: {e}") from e
        inputs = self.session.get_inputs()
        outputs = {o.name for o in self.session.get_outputs()}
        if len(inputs) != 1 or not {"dets", "labels"} <= outputs:
            raise InputError(
                f"{path} is not an mmdeploy detector export: inputs "
                f"{[i.name for i in inputs]}, outputs {sorted(outputs)} (need 'dets' and 'labels')"
            )
        self._input_name = inputs[0].name
        LOG.info("loaded person detector %s (input %s, providers %s)", path, inputs[0].shape,
                 self.session.get_providers())  # fmt: skip

    def preprocess(self, image_bgr: np.ndarray) -> tuple[np.ndarray, float]:
        """One BGR image -> ((3, S, S) float32 normalised network input, resize ratio)."""
        img = check_image(image_bgr, "PersonDetector")
        canvas, ratio = letterbox(img, self.input_size)
        x = (canvas.astype(np.float32) - _MEAN_BGR) / _STD_BGR
        return np.ascontiguousarray(x.transpose(2, 0, 1)), ratio

    def _postprocess(self, dets, labels, ratio: float, shape) -> tuple[np.ndarray, np.ndarray]:
        dets = np.asarray(dets, dtype=np.float32).reshape(-1, 5)
        labels = np.asarray(labels).reshape(-1)
        keep = (labels == 0) & (dets[:, 4] >= self.score_threshold) & np.isfinite(dets).all(axis=1)
        boxes = dets[keep, :4] / ratio
        scores = dets[keep, 4]
        h, w = shape[:2]
        boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, w)
        boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, h)
        ok = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        order = np.argsort(-scores[ok], kind="stable")
        return boxes[ok][order].astype(np.float32), scores[ok][order].astype(np.float32)

    def detect(self, image_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Detect people in one image.

        Args:
            image_bgr: (H, W, 3) uint8 BGR image (as ``cv2.imread`` returns); gray (H, W) and
                BGRA are converted, other real dtypes are read as 0..255 values, rounded and
                clipped.

        Returns:
            boxes: (N, 4) float32 ``(x1, y1, x2, y2)`` in original px, clipped to the image,
                sorted by descending score.
            scores: (N,) float32 in [score_threshold, 1].
        """
        x, ratio = self.preprocess(image_bgr)
        dets, labels = self.session.run(["dets", "labels"], {self._input_name: x[None]})
        return self._postprocess(dets[0], labels[0], ratio, np.shape(image_bgr))

    def detect_batch(self, images_bgr) -> list[tuple[np.ndarray, np.ndarray]]:
        """:meth:`detect` over a sequence of images.

        The network runs one image at a time: the shipped mmdeploy export declares a dynamic
        batch axis, but its built-in NMS fails for batches larger than 1 (a ``Where`` node
        cannot broadcast), and at 320 x 320 a batch would save little on CPU anyway.

        Returns a list of ``(boxes (N_i, 4), scores (N_i,))`` in each image's original px.
        """
        return [self.detect(im) for im in images_bgr]

    def __repr__(self) -> str:
        return (f"PersonDetector({str(self.onnx_path)!r}, score_threshold={self.score_threshold}, "
                f"input_size={self.input_size})")  # fmt: skip
