"""Demo inputs (:func:`open_source`): an image file, a folder of images, a video file, or
``webcam:N``, each as a :class:`FrameSource`."""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError

__all__ = ["IMAGE_EXTENSIONS", "VIDEO_EXTENSIONS", "FrameSource", "open_source"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm", ".mpg", ".mpeg", ".wmv")


@dataclass
class FrameSource:
    """An input: ``kind`` is ``"image"``, ``"folder"``, ``"video"`` or ``"webcam"``.

    Attributes:
        name: what the user passed.
        paths: image files (image / folder kinds).
        capture: the opened ``cv2.VideoCapture`` (video / webcam kinds).
        fps: the video's frame rate (25 when unknown).
        total: number of frames that will be processed, when known (None for an unlimited webcam).
        limit: the ``max_frames`` the source was opened with: no frame beyond it is ever read
            (None: no limit).
        header_frames: the frame count a video's header announces (None when it has none);
            a video that decodes fewer frames is reported as truncated.
    """

    kind: str
    name: str
    paths: list[Path] = field(default_factory=list)
    capture: object = None
    fps: float = 25.0
    total: int | None = None
    limit: int | None = None
    header_frames: int | None = None

    @property
    def is_stream(self) -> bool:
        return self.kind in ("video", "webcam")

    def close(self) -> None:
        if self.capture is not None:
            self.capture.release()
            self.capture = None


def _quiet_opencv() -> None:
    """Silence OpenCV's own warnings (failed camera probes etc.): we raise one clear error."""
    try:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    except AttributeError:  # pragma: no cover - old OpenCV
        pass


@contextlib.contextmanager
def _native_stderr_silenced():
    """Send fd 2 to /dev/null while OpenCV/FFmpeg probe an input: their C-level messages
    ("moov atom not found", camera probe warnings) would duplicate our one-line error."""
    try:
        saved = os.dup(2)
    except OSError:  # pragma: no cover - no fd 2
        yield
        return
    try:
        sys.stderr.flush()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def open_source(spec: str, max_frames: int | None = None) -> FrameSource:
    """Open an image file, a folder of images, a video file or ``webcam:N``.

    ``max_frames`` (None or 0: all) bounds what is read: the first N images of a folder, the first
    N frames of a video or webcam; :func:`~simplepose.demo.run_demo` reads no frame beyond it.

    Raises:
        InputError: the path does not exist, the folder has no images, the video or webcam
            cannot be opened or yields no frame.
    """
    _quiet_opencv()
    spec = str(spec)
    if spec.startswith("webcam:"):
        index = spec.split(":", 1)[1]
        if not index.isdigit():
            raise InputError(f"webcam index must be a number, got {spec!r} (use webcam:0)")
        with _native_stderr_silenced():
            cap = cv2.VideoCapture(int(index))
        if not cap.isOpened():
            cap.release()
            raise InputError(f"webcam {index} cannot be opened (no such camera, or it is busy)")
        fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
        return FrameSource("webcam", spec, capture=cap, fps=fps, total=max_frames, limit=max_frames)
    path = Path(spec)
    if not path.exists():
        raise InputError(f"input {path} does not exist")
    if path.is_dir():
        paths = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        if not paths:
            raise InputError(f"folder {path} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
        paths = paths[:max_frames] if max_frames else paths
        return FrameSource("folder", spec, paths=paths, total=len(paths), limit=max_frames)
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        return FrameSource("image", spec, paths=[path], total=1)
    with _native_stderr_silenced():
        cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise InputError(f"video {path} cannot be opened (not a video, or an unsupported codec)")
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    fps = cap.get(cv2.CAP_PROP_FPS)
    fps = fps if fps and np.isfinite(fps) and 0 < fps < 1000 else 25.0
    total = count if count > 0 else None
    if max_frames:
        total = min(total, max_frames) if total else max_frames
    return FrameSource("video", spec, capture=cap, fps=fps, total=total, limit=max_frames,
                       header_frames=count if count > 0 else None)
