"""What several test files build the same way: small videos, a frame counter, and the stand-in
predictor the demo pipeline runs (``from helpers import ...``; tests/ is on ``sys.path``)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np


def write_video(path: Path, frames: Iterable[np.ndarray], fps: float = 10.0,
                fourcc: str = "MJPG") -> Path:
    """Write ``frames`` ((H, W, 3) uint8 BGR, all one size) to the video ``path``."""
    writer = None
    for frame in frames:
        if writer is None:
            h, w = frame.shape[:2]
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
            assert writer.isOpened(), f"cannot write {path} with {fourcc}"
        writer.write(frame)
    assert writer is not None, "no frames to write"
    writer.release()
    return path


def numbered_frames(n: int, size=(64, 48)) -> list[np.ndarray]:
    """``n`` flat (H, W, 3) frames of ``size`` (w, h), frame i filled with ``(10 i + 5) % 250``
    (the frame's mean tells its index)."""
    return [np.full((size[1], size[0], 3), (10 * i + 5) % 250, np.uint8) for i in range(n)]


def count_frames(path) -> int:
    """Frames OpenCV decodes from the video ``path``."""
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened(), f"{path} does not open"
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


class FakePipelinePredictor:
    """A "top-down" :class:`~simplepose.Predictor` stand-in for the demo pipeline: ``prepare``
    passes the frame on, ``forward`` runs :meth:`predict` (a subclass's people of a frame),
    ``decode`` returns them, so the pipeline's split of ``predict`` gives what it gives whole."""

    mode = "topdown"
    model_name = "fake"

    def __init__(self):
        self.pipeline = SimpleNamespace(device="cpu")
        self.calls = 0

    def prepare(self, frame):
        return frame

    def forward(self, frame):
        return self.predict(frame)

    def decode(self, frame, people):
        return people

    def predict(self, frame):
        raise NotImplementedError
