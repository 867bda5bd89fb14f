"""Atomic file writes: a temp file in the destination folder, fsync, then rename, so a crash
never leaves a half-written checkpoint or results file behind.

Temp files are named ``.<name>.<pid>@<host>.<random><suffix>.tmp``. A process killed while
writing leaves its temp file behind; the next write of the same destination removes the temp
files of that destination whose writer (same host, pid) no longer runs.

JSON nested too deeply for Python's parser is an error that names the file (and the line where
the nesting passes :data:`MAX_JSON_DEPTH`), not a ``RecursionError``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import tempfile
from contextlib import contextmanager
from pathlib import Path

__all__ = [
    "MAX_JSON_DEPTH",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "check_output_file",
    "check_writable_folder",
    "commit_temp_file",
    "file_sha256",
    "loads_json",
    "read_json",
    "remove_stale_temps",
    "temp_file_for",
]

LOG = logging.getLogger(__name__)

#: The nesting named in the error for JSON too deep to parse (COCO files nest 4 deep).
MAX_JSON_DEPTH = 100


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname()) or "host"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_stale_temps(path, suffix: str = "") -> list[Path]:
    """Delete the temp files of ``path`` left by killed writers on this host; return them.

    Only files named like :func:`temp_file_for`'s temps of this destination are considered:
    those of a pid that no longer runs on this host, and those of the older pid-less naming
    (``.<name>.<random><suffix>.tmp``).
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    name = re.escape(path.name)
    tail = rf"(?:{re.escape(suffix)}\.tmp|\.tmp{re.escape(path.suffix)})"
    ours = re.compile(rf"^\.{name}\.(\d+)@{re.escape(_host())}\.[a-z0-9_]{{8}}{tail}$")
    legacy = re.compile(rf"^\.{name}\.[a-z0-9_]{{8}}{re.escape(suffix)}\.tmp$")
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        m = ours.match(entry.name)
        if not (legacy.match(entry.name) or (m and not _pid_alive(int(m.group(1))))):
            continue
        try:
            os.unlink(entry.path)
        except OSError:
            continue
        removed.append(Path(entry.path))
    if removed:
        LOG.info("removed %d temp file(s) of %s left by killed writes", len(removed), path)
    return removed


def temp_file_for(path, suffix: str = "", keep_extension: bool = False) -> Path:
    """Create an empty temp file next to ``path`` (after :func:`remove_stale_temps`).

    Named ``.<name>.<pid>@<host>.<random><suffix>.tmp``, or ``...<random>.tmp<ext>`` with
    ``keep_extension`` (writers that choose the format from the extension: video files).

    Raises FileNotFoundError naming the folder when the destination folder does not exist.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(f"cannot write {path}: folder {folder} does not exist")
    remove_stale_temps(path, suffix)
    end = f".tmp{path.suffix}" if keep_extension else f"{suffix}.tmp"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}@{_host()}.", suffix=end,
                               dir=folder)
    os.close(fd)
    return Path(tmp)


def commit_temp_file(tmp, path) -> None:
    """Give ``tmp`` the usual permissions (``0o666 & ~umask``; mkstemp and safetensors create
    0600), fsync it and rename it onto ``path``."""
    os.chmod(tmp, 0o666 & ~_umask())
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


@contextmanager
def atomic_path(path, suffix: str = "", keep_extension: bool = False):
    """Yield a temp path next to ``path`` (:func:`temp_file_for`); on success it is renamed
    onto ``path`` (:func:`commit_temp_file`), on an exception deleted. A killed process leaves
    its temp file, which the next write of ``path`` removes.

    Raises FileNotFoundError naming the folder when the destination folder does not exist.
    """
    path = Path(path)
    tmp = temp_file_for(path, suffix, keep_extension)
    try:
        yield tmp
        commit_temp_file(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def check_output_file(path, what: str, inputs=(), input_folders=()) -> Path:
    """Check, before any work, that ``path`` can be written without destroying an input.

    Refused (:class:`~simplepose.errors.InputError`, one line naming ``what`` and the path): the
    folder does not exist or is not writable (a temp file is created and removed there), the
    path is an existing folder, it is one of ``inputs`` (also through a link), or it lies inside
    one of ``input_folders``.

    Returns:
        ``Path(path)``.
    """
    from ..errors import InputError

    path = Path(path)
    for item in input_folders:
        if item is None:
            continue
        base = Path(item).resolve()
        if base == path.resolve() or base in path.resolve().parents:
            raise InputError(f"{what} {path} lies inside the input folder {item}: "
                             f"write it elsewhere")
    for item in inputs:
        if item is None:
            continue
        same = Path(item).resolve() == path.resolve()
        if not same and path.exists() and Path(item).exists():
            try:
                same = os.path.samefile(path, item)
            except OSError:
                same = False
        if same:
            raise InputError(f"{what} {path} is the input {item}: it would be overwritten")
    if path.is_dir():
        raise InputError(f"{what} {path} is a folder, not a file")
    check_writable_folder(path.parent if str(path.parent) else Path("."), f"{what} {path}")
    return path


def check_writable_folder(folder, what: str) -> Path:
    """InputError naming ``what`` unless ``folder`` exists and a file can be created in it."""
    from ..errors import InputError

    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"cannot write {what}: folder {folder} does not exist")
    try:
        fd, probe = tempfile.mkstemp(prefix=".simplepose-write-check.", dir=folder)
    except OSError as exc:
        raise InputError(f"cannot write {what}: folder {folder} is not writable "
                         f"({exc.strerror or exc})") from None
    os.close(fd)
    os.unlink(probe)
    return folder


def file_sha256(path) -> str:
    """Hex SHA-256 of a file's bytes (read in 1 MiB blocks)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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


def _json_depth_error(data, max_depth: int) -> str | None:
    """Where ``data`` (JSON text) nests deeper than ``max_depth``, scanned without recursion."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    # strings may hold brackets: blank them out (escaped quotes first) before counting
    text = re.sub(rb'"(?:[^"\\]|\\.)*"', b'""', bytes(data))
    depth = 0
    for i, c in enumerate(text):
        if c in b"[{":
            depth += 1
            if depth > max_depth:
                line = text.count(b"\n", 0, i) + 1
                return f"nested deeper than {max_depth} levels (line {line})"
        elif c in b"]}":
            depth -= 1
    return None


def loads_json(data, what: str, max_depth: int = MAX_JSON_DEPTH):
    """``json.loads(data)`` with a ValueError naming ``what`` instead of a RecursionError when
    the parser gives up on deep nesting; the message gives the line where the nesting passes
    ``max_depth`` (shallower nesting that the parser takes is accepted). ``data`` is str or
    bytes.

    Raises:
        json.JSONDecodeError: invalid JSON. ValueError: nested too deeply.
    """
    try:
        return json.loads(data)
    except RecursionError:
        problem = _json_depth_error(data, max_depth) or "nested too deeply"
        raise ValueError(f"{what} is {problem}") from None


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
            return loads_json(f.read(), f"{what} file {path}")
    except json.JSONDecodeError as exc:
        raise AnnotationError(
            f"{what} file {path} is not valid JSON "
            f"(line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from exc
    except UnicodeDecodeError as exc:
        raise AnnotationError(f"{what} file {path} is not UTF-8 text: {exc}") from exc
    except ValueError as exc:  # nested too deeply (loads_json)
        raise AnnotationError(str(exc)) from None
    except OSError as exc:
        raise AnnotationError(f"{what} file {path} cannot be read: {exc}") from exc
