"""Demo outputs: the drawn frame (:func:`render_frame`), an annotated image file
(:func:`write_image`), a folder of them, or an annotated video (:func:`open_video_writer`:
H.264 ``.mp4`` that browsers play, see :class:`~simplepose.utils.video.VideoWriter`), the
per-frame people JSON (:func:`people_to_json` records, :func:`open_json_sink`: a ``.jsonl``
path streams one line per frame as it goes, any other path gets one JSON list at the end), and
a window on the screen (:class:`Window`, where :func:`display_problem` finds none).
:func:`plan_outputs` checks every output location before any work, and refuses an output that
is an input or lies inside an input folder. Every file but the streamed ``.jsonl`` is written
atomically: a video goes to a temp file in the same folder, renamed onto the output when the
writer is released (also after a stream breaks mid-way: what was written is kept), so a killed
run leaves the previous file intact (and its temp file is removed by the next run)."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError
from ..structures import Person
from ..utils.io import (
    atomic_path,
    atomic_write_json,
    check_output_file,
    check_writable_folder,
)
from ..utils.video import JsonlWriter, VideoWriter
from .sources import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, FrameSource

__all__ = [
    "Window",
    "display_problem",
    "open_json_sink",
    "open_video_writer",
    "people_to_json",
    "plan_outputs",
    "render_frame",
    "write_image",
]


def people_to_json(people: list[Person]) -> list[dict]:
    """People -> ``[{"keypoints": 3 K floats (x, y original px, score), "score", "box_xyxy"}]``
    (``box_xyxy``: x1, y1, x2, y2 original px; see the README's "Coordinates and formats"),
    with ``"track_id"`` first for tracked people (:class:`~simplepose.tracking.TrackedPerson`)."""
    return [
        {
            **({"track_id": int(p.track_id)} if getattr(p, "track_id", None) is not None else {}),
            "keypoints": [round(float(v), 2) for v in np.asarray(p.keypoints).reshape(-1)],
            "score": round(float(p.score), 4),
            "box_xyxy": [round(float(v), 2) for v in np.asarray(p.box).reshape(-1)],
        }
        for p in people
    ]


class _JsonListSink:
    """Records kept in memory and written as one JSON list, atomically, on close."""

    def __init__(self, path: Path):
        self.path, self.records = path, []

    def write(self, record: dict) -> None:
        self.records.append(record)

    def close(self) -> None:
        atomic_write_json(self.path, self.records)


def open_json_sink(path):
    """Where the per-frame records go: a ``.jsonl`` path streams one JSON object per line,
    flushed line by line (:class:`~simplepose.utils.video.JsonlWriter`: a killed run keeps every
    frame written so far); any other path gets one JSON list, written atomically on ``close()``.
    Both have ``write(record)`` and ``close()``."""
    path = Path(path)
    if path.suffix.lower() == ".jsonl":
        return JsonlWriter(path)
    return _JsonListSink(path)


def _check_parent(path: Path, what: str) -> None:
    check_writable_folder(path.parent, f"{what} {path}")


def write_image(path: Path, image: np.ndarray) -> None:
    ok, buf = cv2.imencode(path.suffix or ".jpg", image)
    if not ok:
        raise InputError(f"cannot encode {path} (unsupported image extension {path.suffix!r})")
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(buf.tobytes())


def _inputs_of(source: FrameSource) -> tuple[list, list]:
    """(input files, input folders) of ``source``: what an output must not overwrite."""
    if source.kind == "webcam":
        return [], []
    if source.kind == "folder":
        return list(source.paths), [source.name]
    return [source.name], []


def plan_outputs(
    source: FrameSource, output: str | None, json_path: str | None, inputs=()
) -> Path | None:
    """Validate the output paths before any work; returns the resolved image/video output.

    ``inputs``: other files the run reads (a checkpoint, a detector or model ONNX), which an
    output must not overwrite either.

    Raises:
        InputError: a missing or unwritable folder, a wrong kind of output (a folder where a
            file is wanted), an output that is an input (also through a link) or lies inside
            the input folder (:func:`~simplepose.utils.io.check_output_file`), or a drawn
            output that is also the JSON output.
    """
    sources, input_folders = _inputs_of(source)
    inputs = [*sources, *(p for p in inputs if p)]
    if json_path:
        check_output_file(json_path, "JSON output", inputs, input_folders)
    if not output:
        return None
    out = Path(output)
    if source.kind == "folder":
        if out.exists() and not out.is_dir():
            raise InputError(f"output {out} must be a folder for a folder input")
        _check_parent(out, "output folder")
        where = Path(source.name).resolve()
        if where == out.resolve() or where in out.resolve().parents:
            raise InputError(
                f"output folder {out} lies inside the input folder {source.name}: "
                "write it elsewhere"
            )
        out.mkdir(exist_ok=True)
        return out
    if out.is_dir():
        stem = Path(source.name).stem if source.kind != "webcam" else "webcam"
        out = out / (Path(source.name).name if source.kind == "image" else f"{stem}.mp4")
    check_output_file(out, "output", inputs, input_folders)
    if source.is_stream and out.suffix.lower() not in VIDEO_EXTENSIONS:
        raise InputError(
            f"output {out} of a video must be a video file "
            f"({', '.join(VIDEO_EXTENSIONS[:4])}) or a folder"
        )
    if not source.is_stream and out.suffix.lower() not in IMAGE_EXTENSIONS:
        raise InputError(
            f"output {out} of an image must be an image file "
            f"({', '.join(IMAGE_EXTENSIONS)}) or a folder"
        )
    if json_path and out.resolve() == Path(json_path).resolve():
        raise InputError(f"output {out} is also the JSON output: one would overwrite the other")
    return out


def render_frame(frame, people, kpt_threshold, draw_boxes, hud, fps):
    from ..visualize import draw_hud, draw_people

    canvas = draw_people(
        frame, people, kpt_threshold=kpt_threshold, draw_boxes=draw_boxes, copy=False
    )
    if hud:
        draw_hud(canvas, len(people), fps)
    return canvas


def open_video_writer(path: Path, fps: float, width: int, height: int) -> VideoWriter:
    """An H.264 (VP9 for ``.webm``) :class:`~simplepose.utils.video.VideoWriter` into a temp file:
    ``path`` changes only when it is released (``release()``/``close()``)."""
    return VideoWriter(path, fps, (int(width), int(height)))


def display_problem() -> str | None:
    """Why no window can be shown here, or None when one can.

    A window needs OpenCV built with a GUI backend (``opencv-python-headless``, which simplepose
    installs, has none) and, on Linux, a display (``DISPLAY`` or ``WAYLAND_DISPLAY``).
    """
    gui = re.search(r"^\s*GUI:\s*(\S+)", cv2.getBuildInformation(), re.MULTILINE)
    if gui is None or gui.group(1).upper() == "NONE":
        return "this OpenCV has no GUI support (opencv-python-headless)"
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        return "no display (DISPLAY is not set)"
    return None


class Window:
    """An OpenCV window showing drawn frames; q or Esc (or closing it) asks the run to stop."""

    def __init__(self, title: str):
        problem = display_problem()
        if problem:
            raise InputError(f"cannot show a window: {problem}")
        self.title = f"simplepose: {title}"
        cv2.namedWindow(self.title, cv2.WINDOW_NORMAL)

    def show(self, canvas: np.ndarray, wait: bool = False) -> bool:
        """Show ``canvas``; ``wait``: until a key is pressed. False when the user asked to stop."""
        cv2.imshow(self.title, canvas)
        key = cv2.waitKey(0 if wait else 1) & 0xFF
        closed = cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1
        return key not in (ord("q"), 27) and not closed

    def close(self) -> None:
        try:
            cv2.destroyWindow(self.title)
        except cv2.error:  # already closed by the user
            pass
