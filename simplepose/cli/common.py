"""What every command shares: exit codes, error reporting and the flag vocabulary.

Exit status: :data:`EXIT_OK` 0 success; :data:`EXIT_PARTIAL` 1 some inputs were skipped (the
rest were processed and written, the skipped ones are listed); :data:`EXIT_USAGE` 2 a usage or
input error stopped the run (bad flag, missing or unreadable input, missing output folder);
:data:`EXIT_INTERRUPTED` 130 Ctrl-C.

Errors are one line, ``<prog>: error: <what is wrong>``. Only simplepose's own errors
(:class:`~simplepose.errors.SimplePoseError`) and operating-system errors (a file that cannot
be opened or written) are reported this way; anything else is a bug and keeps its traceback.
Under torchrun only rank 0 prints; the other ranks exit quietly with the same status.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable

__all__ = [
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_PARTIAL",
    "EXIT_USAGE",
    "add_alias",
    "add_max_frames",
    "add_shift_ratios",
    "float_in",
    "int_at_least",
    "is_quiet_rank",
    "parse_and_run",
    "report_error",
    "run_reporting_errors",
    "setup_logging",
]

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def add_alias(parser, *old: str, dest: str, **kwargs) -> None:
    """Accept an old spelling of a flag for one more release, hidden from ``--help``."""
    parser.add_argument(*old, dest=dest, help=argparse.SUPPRESS, **kwargs)


def int_at_least(minimum: int, meaning: str = ""):
    """argparse ``type`` for an integer >= ``minimum`` (a bad value is a usage error naming it;
    ``meaning`` explains the smallest values, e.g. "0: torch default")."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            hint = f" ({meaning})" if meaning else ""
            raise argparse.ArgumentTypeError(f"must be >= {minimum}{hint}, got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


def float_in(lo: float, hi: float):
    """argparse ``type`` for a finite number in ``[lo, hi]``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not lo <= value <= hi:  # also NaN
            raise argparse.ArgumentTypeError(f"must be in [{lo:g}, {hi:g}], got {text}")
        return value

    parse.__name__ = f"number in [{lo:g}, {hi:g}]"
    return parse


def add_max_frames(parser, what: str = "frames", *old: str) -> None:
    """``--max-frames N``: the frame or image limit of every command (``old``: hidden aliases)."""
    parser.add_argument(
        "--max-frames",
        type=int_at_least(1),
        default=None,
        metavar="N",
        help=f"stop after the first N {what} (none are read beyond them)",
    )
    if old:
        add_alias(parser, *old, dest="max_frames", type=int_at_least(1))


def add_shift_ratios(parser) -> None:
    """``--shift-ratios R [R ...]``: the top-down decoder's sub-cell shifts toward the 2nd, 3rd,
    ... maxima, heatmap px (``TopDownHeatmapCodec.shift_ratios``; default: the model's)."""
    parser.add_argument(
        "--shift-ratios",
        type=float,
        nargs="+",
        default=None,
        metavar="R",
        help="top-down decode: shift R1 heatmap px toward the 2nd maximum, then R2 toward the "
        "3rd, ... (1 to 8 ratios in [0, 1); default: the model's, 0.25; MSPN's multi-shift "
        "test: e.g. 0.25 0.1)",
    )


def is_quiet_rank() -> bool:
    """True in the processes of a torchrun job other than rank 0."""
    return (
        int(os.environ.get("WORLD_SIZE", "1") or 1) > 1
        and int(os.environ.get("RANK", "0") or 0) != 0
    )


def report_error(prog: str, message: str) -> int:
    """Print ``<prog>: error: <first line>`` (rank 0 only) and return :data:`EXIT_USAGE`."""
    if not is_quiet_rank():
        print(f"{prog}: error: {message.splitlines()[0] if message else 'failed'}", file=sys.stderr)
    return EXIT_USAGE


def run_reporting_errors(prog: str, fn: Callable[[], int]) -> int:
    """``fn()``, with simplepose's and the OS's errors turned into one line and exit status 2."""
    from simplepose.errors import SimplePoseError

    try:
        return fn()
    except KeyboardInterrupt:
        if not is_quiet_rank():
            print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (SimplePoseError, OSError) as exc:
        return report_error(prog, str(exc) or type(exc).__name__)


def parse_and_run(parser: argparse.ArgumentParser, argv, run: Callable[[object], int]) -> int:
    """A command's ``main``: parse ``argv``, set up logging, then ``run(args)`` with errors
    reported as one line (:func:`run_reporting_errors`)."""
    args = parser.parse_args(argv)
    setup_logging()
    return run_reporting_errors(parser.prog, lambda: run(args))


class _TqdmHandler(logging.StreamHandler):
    """Writes log records through ``tqdm.write``, so that a progress bar is redrawn below them
    instead of being broken in two."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm import tqdm

            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # noqa: BLE001 - logging must never raise (as StreamHandler.emit)
            self.handleError(record)


def setup_logging(
    level: int = logging.WARNING,
    fmt: str = "%(levelname)s %(name)s: %(message)s",
    datefmt: str | None = None,
) -> None:
    """Configure the root logger of a command (no-op when the application already did)."""
    handler = _TqdmHandler()
    handler.setFormatter(logging.Formatter(fmt, datefmt))
    logging.basicConfig(level=level, handlers=[handler])
