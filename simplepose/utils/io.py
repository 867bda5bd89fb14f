"""Atomic file writes: a temp file in the destination folder, fsync, then rename, so a crash
never leaves a half-written checkpoint or results file behind."""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

__all__ = [
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "read_json",
]


@contextmanager
def atomic_path(path, suffix: str = ""):
    """Yield a temp path next to ``path``; on success it is renamed onto ``path``.

    Raises FileNotFoundError naming the folder when the destination folder does not exist.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(f"cannot write {path}: folder {folder} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix + ".tmp", dir=folder)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the usual permissions
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data)


def atomic_write_text(path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path, obj, indent: int | None = None) -> None:
    atomic_write_text(path, json.dumps(obj, indent=indent))


def read_json(path, what: str):
    """Parse a JSON file; AnnotationError naming ``what`` (e.g. "results"), the path and the
    problem for a missing, non-regular, unreadable or invalid file."""
    from ..errors import AnnotationError

    path = Path(path)
    if not path.exists():
        raise AnnotationError(f"{what} file {path} does not exist")
    if not path.is_file():
        raise AnnotationError(f"{what} file {path} is not a regular file")
    try:
        with open(path, "rb") as f:
            return json.load(f)
    except json.JSONDecodeError as exc:
        raise AnnotationError(
            f"{what} file {path} is not valid JSON "
            f"(line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from exc
    except UnicodeDecodeError as exc:
        raise AnnotationError(f"{what} file {path} is not UTF-8 text: {exc}") from exc
    except OSError as exc:
        raise AnnotationError(f"{what} file {path} cannot be read: {exc}") from exc
