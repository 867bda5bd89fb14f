"""Train a simplepose model, in one process or several.

    simplepose train --config configs/imhn_tiny.yaml
    simplepose train --config configs/imhn_tiny.yaml --opts train.output_dir=runs/t optim.lr=1e-4
    simplepose train --nproc-per-node 2 --config configs/imhn_tiny.yaml --opts train.max_iters=4
    # continue from <output_dir>/last.pt:
    simplepose train --config configs/imhn_tiny.yaml --resume
    torchrun --standalone --nproc_per_node=4 train_dist.py --config configs/imhn_512_coco.yaml \\
        --opts data.train_ann=ANN.json data.train_images=DIR  # your COCO train split

``--nproc-per-node N`` starts N processes on this machine (torchrun's standalone launcher, run
in process) after checking the config once; torchrun itself, needed for several machines,
runs ``train_dist.py`` with the same options. Under either, rank 0 reports an error and the
other ranks exit quietly with the same status.

The library does the work (:mod:`simplepose.config`, :mod:`simplepose.engine`); this module
parses arguments, sets up logging, and turns bad input into a one-line error (exit 2).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from simplepose.cli.common import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    int_at_least,
    report_error,
    run_reporting_errors,
    setup_logging,
)
from simplepose.errors import SimplePoseError

_PROG_ENV = "SIMPLEPOSE_PROG"  # the launcher's program name, for its children's messages


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Train a simplepose model (single process or torchrun).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Overrides use dotted keys with YAML values, e.g. --opts optim.lr=1e-4 "
               "data.batch_size=2 model.kwargs.num_stacks=1 output_dir=runs/x",
    )
    parser.add_argument("--config", required=True, help="YAML config file (configs/*.yaml)")
    parser.add_argument("--opts", nargs="*", default=[], metavar="KEY=VALUE",
                        help="config overrides (dotted keys; a unique leaf name also works)")
    parser.add_argument("--resume", nargs="?", const="", default=None, metavar="PATH",
                        help="resume from PATH, or from <output_dir>/last.pt when no PATH")
    parser.add_argument("--log-level", default="INFO",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    parser.add_argument(
        "--nproc-per-node",
        type=int_at_least(0, "0: this process only"),
        default=0,
        metavar="N",
        help="start N training processes on this machine (DDP; 0: this process only)",
    )
    return parser


def _setup_logging(level: str, rank: int) -> None:
    # Non-zero ranks only report warnings and errors, so the log reads like one process.
    setup_logging(
        getattr(logging, level) if rank == 0 else logging.WARNING,
        f"%(asctime)s [rank {rank}] %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )


def main(argv=None, prog: str | None = None) -> int:
    parser = build_parser(prog or os.environ.get(_PROG_ENV))
    args = parser.parse_args(argv)
    prog = parser.prog
    args.prog = prog

    rank = int(os.environ.get("RANK", "0") or 0)
    _setup_logging(args.log_level, rank)

    from simplepose.config import load_config

    try:
        cfg = load_config(args.config, args.opts)
    except SimplePoseError as exc:
        return report_error(prog, str(exc))
    if args.nproc_per_node and int(os.environ.get("WORLD_SIZE", "1") or 1) == 1:
        return launch(args, prog)
    return run_reporting_errors(prog, lambda: train(cfg, args))


def _prog_name(args) -> str:
    return getattr(args, "prog", None) or os.environ.get(_PROG_ENV) or "simplepose train"


def train(cfg, args) -> int:
    from simplepose import dist
    from simplepose.engine.loop import Trainer

    info = None
    try:
        info = dist.init_distributed(cfg.train.device, timeout_s=cfg.train.dist_timeout_s)
        trainer = Trainer(cfg, dist_info=info)
        if args.resume is not None:
            trainer.resume(args.resume or None)
        final = trainer.fit()
    except RuntimeError as exc:  # a collective timed out or a peer vanished: name the rank
        message = dist.describe_collective_failure(exc)
        if message is None:
            raise
        # every rank reports: each names the ranks it found silent
        print(f"{_prog_name(args)}: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        dist.cleanup()
    if info is None or info.is_main:
        print(f"done: {trainer.iteration} iterations, final model {final}")
    return EXIT_OK


def launch(args, prog: str) -> int:
    """Run this command in ``args.nproc_per_node`` processes with torchrun's standalone launcher.

    A failed process makes the launcher raise ``ChildFailedError``; rank 0 has already reported
    the error, so this returns the failed processes' exit status without the launcher's traceback.
    """
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser
    from torch.distributed.run import run as torchrun

    child = ["--config", str(args.config), "--log-level", args.log_level]
    if args.opts:
        child += ["--opts", *args.opts]
    if args.resume is not None:
        child += ["--resume", args.resume] if args.resume else ["--resume"]
    launcher_args = get_args_parser().parse_args(
        ["--standalone", f"--nproc-per-node={args.nproc_per_node}", "--module", __name__, *child]
    )
    os.environ[_PROG_ENV] = prog
    # torch threads per process: the cores shared out (torchrun would set 1 and print a warning)
    os.environ.setdefault(
        "OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // args.nproc_per_node))
    )
    # the failure is reported below, in one line: not also as the launcher's log record
    logging.getLogger("torch.distributed.elastic.multiprocessing.api").setLevel(logging.CRITICAL)
    try:
        torchrun(launcher_args)
    except ChildFailedError as exc:
        codes = [f.exitcode for _, f in sorted(exc.failures.items())]
        code = next((c for c in codes if c > 0), 1)  # a negative code is a signal
        if code not in (EXIT_USAGE, EXIT_INTERRUPTED):
            print(f"{prog}: {len(codes)} of {args.nproc_per_node} processes failed "
                  f"(exit status {sorted(set(codes))})", file=sys.stderr)
        return code
    return EXIT_OK


if __name__ == "__main__":  # the child processes of ``launch``
    raise SystemExit(main())
