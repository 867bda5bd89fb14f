"""Video and stream outputs: a video writer whose files browsers open, and a JSON-lines writer
that a killed run leaves valid.

* :class:`VideoWriter`: H.264 (``libx264``, ``yuv420p``, ``+faststart``) in ``.mp4`` /
  ``.mov`` / ``.m4v`` / ``.mkv`` / ``.avi``, or VP9 in ``.webm``, encoded by the ffmpeg binary that
  the ``imageio-ffmpeg`` package ships. OpenCV's own writer cannot do this here (opencv-python
  wheels have no H.264 encoder and its VP8/VP9 encoders run at 0.5-4 FPS on 768x576), and its
  MPEG-4 Part 2 (``mp4v``) files do not play in browsers; without imageio-ffmpeg the writer
  falls back to ``mp4v`` with a warning. The file is written under a temporary name in the
  same folder (:func:`~simplepose.utils.io.temp_file_for`) and renamed when the writer is
  closed, also after an error mid-stream, so what was written is kept; a killed run leaves the
  previous file intact.
* :class:`JsonlWriter`: one JSON object per line, each line flushed as it is written, so a
  run that is killed leaves every line written so far readable.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ..errors import InputError
from .io import check_writable_folder, commit_temp_file, temp_file_for

__all__ = ["JsonlWriter", "VideoWriter", "ffmpeg_executable", "read_jsonl"]

LOG = logging.getLogger(__name__)


def ffmpeg_executable() -> str | None:
    """Path of the ffmpeg binary shipped by ``imageio-ffmpeg``, or None when not installed."""
    try:
        import imageio_ffmpeg
    except ImportError:
        return None
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError:  # pragma: no cover - package without its binary
        return None


class VideoWriter:
    """Write BGR uint8 frames of one size to a video file.

    Args:
        path: the output file; the extension picks the container (``.webm``: VP9; others: H.264).
        fps: frame rate written into the file.
        size: (width, height) of the frames in px; odd sizes are padded by one px for H.264.
        crf: quality (H.264 CRF / VP9 CRF; lower is better and bigger).

    Attributes:
        codec: what is being written: ``"h264"``, ``"vp9"`` or ``"mp4v"`` (fallback).
    """

    def __init__(self, path, fps: float, size: tuple[int, int], crf: int = 23):
        self.path = Path(path)
        check_writable_folder(self.path.parent, f"video {self.path}")
        self.size = (int(size[0]), int(size[1]))
        if min(self.size) < 2:
            raise InputError(f"cannot write video {self.path}: frame size {self.size} is too small")
        fps = float(fps) if fps and np.isfinite(fps) and fps > 0 else 25.0
        self.frames = 0
        self._tmp = temp_file_for(self.path, keep_extension=True)  # stale temps of killed runs go
        self._proc = None
        self._cv = None
        exe = ffmpeg_executable()
        if exe is not None:
            self._open_ffmpeg(exe, fps, crf)
        else:
            self._open_opencv(fps)

    def _open_ffmpeg(self, exe: str, fps: float, crf: int) -> None:
        w, h = self.size
        webm = self.path.suffix.lower() == ".webm"
        self.codec = "vp9" if webm else "h264"
        codec = (
            [
                "-c:v",
                "libvpx-vp9",
                "-deadline",
                "realtime",
                "-cpu-used",
                "8",
                "-b:v",
                "0",
                "-crf",
                str(crf + 10),
            ]
            if webm
            else ["-c:v", "libx264", "-preset", "veryfast", "-crf", str(crf)]
        )
        fmt = (
            ["-f", "webm"]
            if webm
            else (
                ["-movflags", "+faststart"]
                if self.path.suffix.lower() in (".mp4", ".mov", ".m4v")
                else []
            )
        )
        cmd = [
            exe,
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "bgr24",
            "-s",
            f"{w}x{h}",
            "-r",
            f"{fps:.6g}",
            "-i",
            "-",
            "-an",
            "-vf",
            "pad=ceil(iw/2)*2:ceil(ih/2)*2",
            *codec,
            "-pix_fmt",
            "yuv420p",
            *fmt,
            str(self._tmp),
        ]
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the encoder
        self._proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._log
        )

    def _open_opencv(self, fps: float) -> None:
        import cv2

        LOG.warning(
            "imageio-ffmpeg is not installed: writing %s as MPEG-4 Part 2 (mp4v), which browsers "
            "do not play (pip install imageio-ffmpeg for H.264)",
            self.path,
        )
        self.codec = "mp4v"
        self._cv = cv2.VideoWriter(str(self._tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, self.size)
        if not self._cv.isOpened():
            self._tmp.unlink(missing_ok=True)
            raise InputError(
                f"cannot open a video writer for {self.path} (mp4v, {self.size[0]}x{self.size[1]})"
            )

    def write(self, frame: np.ndarray) -> None:
        """Append one BGR uint8 (H, W, 3) frame of the writer's size."""
        if (
            not isinstance(frame, np.ndarray)
            or frame.dtype != np.uint8
            or frame.shape != (self.size[1], self.size[0], 3)
        ):
            raise InputError(
                f"video {self.path}: frame {self.frames} is {getattr(frame, 'shape', None)}, "
                f"expected "
                f"({self.size[1]}, {self.size[0]}, 3) uint8 like the first frame"
            )
        if self._cv is not None:
            self._cv.write(frame)
        else:
            try:
                self._proc.stdin.write(np.ascontiguousarray(frame).tobytes())
            except (BrokenPipeError, OSError) as exc:
                raise InputError(
                    f"video encoder for {self.path} stopped: {self._error_text() or exc}"
                ) from exc
        self.frames += 1

    def _error_text(self) -> str:
        """The last line the encoder wrote to its error log ("" when none)."""
        self._log.seek(0)
        lines = self._log.read().decode("utf-8", "replace").strip().splitlines()
        return lines[-1] if lines else ""

    def close(self) -> None:
        """Finish the file and move it into place (kept even after an error mid-stream); a
        writer that got no frame leaves no file."""
        if self._cv is None and self._proc is None:
            return
        ok = True
        if self._cv is not None:
            self._cv.release()
            self._cv = None
        else:
            proc, self._proc = self._proc, None
            try:
                proc.stdin.close()
            except OSError:
                pass
            ok = proc.wait() == 0
            if not ok:
                LOG.error("video encoder for %s failed: %s", self.path, self._error_text())
            self._log.close()
        if self.frames and ok and self._tmp.exists() and self._tmp.stat().st_size > 0:
            commit_temp_file(self._tmp, self.path)
        else:
            self._tmp.unlink(missing_ok=True)
            if self.frames:
                raise InputError(f"video {self.path} could not be finished")

    release = close

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class JsonlWriter:
    """One JSON object per line, flushed line by line (a killed run keeps a valid prefix).

    The file is written in place, not atomically: its point is to be readable while the run
    goes on and after it is stopped.

    Args:
        path: the output ``.jsonl`` file (its folder must exist).
        flush_every: flush after this many lines (1: every line).
    """

    def __init__(self, path, flush_every: int = 1):
        self.path = Path(path)
        check_writable_folder(self.path.parent, str(self.path))
        self._f = open(self.path, "w", encoding="utf-8")  # noqa: SIM115 - a long-lived stream
        self._every = max(1, int(flush_every))
        self.lines = 0

    def write(self, record: dict) -> None:
        self._f.write(json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n")
        self.lines += 1
        if self.lines % self._every == 0:
            self._f.flush()

    def close(self) -> None:
        if not self._f.closed:
            self._f.flush()
            os.fsync(self._f.fileno())
            self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def read_jsonl(path) -> list[dict]:
    """The complete lines of a JSON-lines file (a last line cut by a kill is left out)."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.endswith("\n"):
                break
            out.append(json.loads(line))
    return out
