"""Demo outputs: the drawn frame (:func:`render_frame`), an annotated image file
(:func:`write_image`), a folder of them, or an annotated video (:func:`open_video_writer`,
``cv2.VideoWriter`` mp4v), and the per-frame people JSON records (:func:`people_to_json`).
:func:`plan_outputs` checks every output location before any work."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError
from ..structures import Person
from ..utils.io import atomic_path
from .sources import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, FrameSource

__all__ = ["open_video_writer", "people_to_json", "plan_outputs", "render_frame", "write_image"]


def people_to_json(people: list[Person]) -> list[dict]:
    """People -> ``[{"keypoints": 51 floats (x, y original px, score), "score", "box": xyxy}]``."""
    return [
        {
            "keypoints": [round(float(v), 2) for v in np.asarray(p.keypoints).reshape(-1)],
            "score": round(float(p.score), 4),
            "box": [round(float(v), 2) for v in np.asarray(p.box).reshape(-1)],
        }
        for p in people
    ]


def _check_parent(path: Path, what: str) -> None:
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"cannot write {what} {path}: folder {parent} does not exist")


def write_image(path: Path, image: np.ndarray) -> None:
    ok, buf = cv2.imencode(path.suffix or ".jpg", image)
    if not ok:
        raise InputError(f"cannot encode {path} (unsupported image extension {path.suffix!r})")
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(buf.tobytes())


def plan_outputs(source: FrameSource, output: str | None, json_path: str | None) -> Path | None:
    """Validate the output paths before any work; returns the resolved image/video output."""
    if json_path:
        _check_parent(Path(json_path), "JSON")
    if not output:
        return None
    out = Path(output)
    if source.kind == "folder":
        if out.exists() and not out.is_dir():
            raise InputError(f"output {out} must be a folder for a folder input")
        _check_parent(out, "output folder")
        out.mkdir(exist_ok=True)
        return out
    if out.is_dir():
        stem = Path(source.name).stem if source.kind != "webcam" else "webcam"
        return out / (Path(source.name).name if source.kind == "image" else f"{stem}.mp4")
    _check_parent(out, "output")
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
    return out


def render_frame(frame, people, kpt_threshold, draw_boxes, hud, fps):
    from ..visualize import draw_hud, draw_people

    canvas = draw_people(
        frame, people, kpt_threshold=kpt_threshold, draw_boxes=draw_boxes, copy=False
    )
    if hud:
        draw_hud(canvas, len(people), fps)
    return canvas


def open_video_writer(path: Path, fps: float, width: int, height: int):
    writer = cv2.VideoWriter(
        str(path), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (int(width), int(height))
    )
    if not writer.isOpened():
        raise InputError(
            f"cannot open video writer for {path} (mp4v codec, {width}x{height} @ {fps:.1f} fps)"
        )
    return writer
