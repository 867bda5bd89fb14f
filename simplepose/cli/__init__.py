"""Command-line programs: ``simplepose <command> [options]`` (or ``python -m simplepose``).

One module per command, each with ``build_parser(prog=None)`` and
``main(argv=None, prog=None) -> int`` (the exit status). The top-level scripts ``demo.py``,
``evaluate.py``, ``train_dist.py`` (torchrun needs a file) and
``data_prep/convert_checkpoint.py`` are thin wrappers around them.

Exit status, every command: 0 success; 1 partial failure (some inputs were skipped, the rest
were processed); 2 a usage or input error stopped the run; 130 interrupted.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys

__all__ = ["COMMANDS", "main"]

#: command -> (module with ``main(argv, prog)``, one-line description). Modules are imported
#: only when their command runs, so ``simplepose --help`` stays fast.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("simplepose.cli.demo", "draw the people in an image, a folder, a video or a webcam"),
    "evaluate": (
        "simplepose.cli.evaluate",
        "keypoint metrics (COCO AP, CrowdPose AP, MPII PCKh) of a model, an oracle or results",
    ),
    "train": (
        "simplepose.cli.train",
        "train a model from a YAML config (torchrun: use train_dist.py)",
    ),
    "convert": (
        "simplepose.cli.convert",
        "convert a released checkpoint to simplepose safetensors",
    ),
    "export": ("simplepose.export", "export a model to ONNX"),
    "bench": (
        "simplepose.cli.bench",
        "end-to-end demo speed on a video, with a per-stage breakdown",
    ),
}


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [
        "usage: simplepose <command> [options]    (simplepose <command> --help for its options)",
        "",
        "Multi-person 2D pose estimation: bottom-up SimplePose/OpenPose and top-down CPN/MSPN/RSN.",
        "",
        "commands:",
    ]
    lines += [f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items()]
    lines += ["", "example: simplepose demo --input assets/sample_group.jpg --output pose.jpg"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Dispatch ``argv[0]`` to its command's ``main(argv[1:], prog="simplepose <command>")``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else 2
    if argv[0] in ("-V", "--version"):
        from importlib.metadata import PackageNotFoundError, version

        try:
            print(f"simplepose {version('simplepose')}")
        except PackageNotFoundError:  # running from a source tree that was never installed
            print("simplepose (not installed)")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(
            f"simplepose: error: unknown command {name!r}; choose one of {', '.join(COMMANDS)}",
            file=sys.stderr,
        )
        return 2
    module_name = COMMANDS[name][0]
    if importlib.util.find_spec(module_name) is None:
        print(
            f"simplepose {name}: not available in this version of simplepose "
            f"({module_name} is not installed)",
            file=sys.stderr,
        )
        return 2
    command = importlib.import_module(module_name).main
    if "prog" in inspect.signature(command).parameters:
        return command(rest, prog=f"simplepose {name}")
    return command(rest)
