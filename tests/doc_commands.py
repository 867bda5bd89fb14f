"""The shell commands written in README.md and in the comments of configs/*.yaml, and a runner that
executes them as a user would: from the root of a clone with ``../shared`` beside it.

Convention (stated in the README): a word in CAPITALS (``CKPT``, ``ANN.json``, ``DIR``, ``VIDEO``,
``HOST`` ...) is something the user supplies; such commands cannot run as written and are only
parsed. Every other command must run as written.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import REPO, SHARED

__all__ = ["NOT_RUN", "Command", "config_commands", "make_clone", "placeholder", "readme_commands", "run"]

PROGRAMS = ("simplepose", "python", "torchrun", "pip")
#: commands that are documented but not run by the tests, with the reason (matched as substrings)
NOT_RUN = {
    "pip install": "installs the package (CI's own first step)",
    "python -m pytest": "the test suite itself",
    "webcam:": "needs a camera and a display",
}
_PLACEHOLDER = re.compile(r"(?<![\w./-])[A-Z][A-Z0-9_]+(?:\.[A-Za-z.]+)?(?![\w-])")


class Command(str):
    """A command line (continuations joined, comments removed) and where it was written."""

    source: str

    def __new__(cls, text: str, source: str):
        obj = super().__new__(cls, text)
        obj.source = source
        return obj


def _strip_comment(line: str) -> str:
    # a '#' that starts a word outside quotes begins a comment
    quote = None
    for i, ch in enumerate(line):
        if ch in "'\"" and quote in (None, ch):
            quote = None if quote else ch
        elif ch == "#" and quote is None and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def _join(lines: list[str], source: str) -> list[Command]:
    commands, current = [], ""
    for raw in lines:
        line = _strip_comment(raw)
        if not line.strip() and not current:
            continue
        current += (" " if current else "") + line.strip().rstrip("\\").strip()
        if line.endswith("\\"):
            continue
        for part in current.split(" && "):  # each step of a chain is a command of its own
            if part.split(" ", 1)[0] in PROGRAMS:
                commands.append(Command(part, source))
        current = ""
    return commands


def readme_commands(path: Path = REPO / "README.md") -> list[Command]:
    """Every command of the README's ```bash blocks, in order."""
    commands, block = [], None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            if block is None and line.strip() in ("```bash", "```sh", "```shell"):
                block = []
            elif block is not None:
                commands += _join(block, path.name)
                block = None
            continue
        if block is not None:
            block.append(line)
    return commands


def config_commands(path: Path) -> list[Command]:
    """Commands in a config's leading comment: lines ``#   <program> ...`` and their continuations."""
    lines, continuing = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        body = line[1:]
        if continuing or re.match(r"\s{2,}(" + "|".join(PROGRAMS) + r")\s", body):
            lines.append(body)
            continuing = body.rstrip().endswith("\\")
    return _join(lines, f"configs/{path.name}")


def placeholder(command: str) -> str | None:
    """The first word in CAPITALS (something the user supplies), or None."""
    match = _PLACEHOLDER.search(command)
    return match.group(0) if match else None


def make_clone(root: Path) -> Path:
    """A stand-in for a fresh clone: ``root/repo`` links the tracked top-level entries of the
    repository (outputs land in ``root/repo``, not in the checkout), ``root/shared`` links the
    shared data, and ``root/bin/simplepose`` runs this checkout's command."""
    repo = root / "repo"
    repo.mkdir(parents=True)
    listed = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=False)
    names = sorted({p.split("/", 1)[0] for p in listed.stdout.split()}) if listed.returncode == 0 else [
        p.name for p in REPO.iterdir() if p.name not in ("runs", "build", ".git")
    ]
    for name in names:
        if (REPO / name).exists():
            (repo / name).symlink_to(REPO / name)
    if SHARED.exists():
        (root / "shared").symlink_to(SHARED)
    bin_dir = root / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "simplepose"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m simplepose "$@"\n')
    shim.chmod(0o755)
    return repo


def run(command: str, clone: Path, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run ``command`` with bash in ``clone``, with this checkout's package and Python first."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(clone.parent / "bin"), str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.setdefault("MPLBACKEND", "Agg")
    return subprocess.run(["bash", "-c", command], cwd=clone, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def torchrun_available() -> bool:
    return shutil.which("torchrun") is not None
