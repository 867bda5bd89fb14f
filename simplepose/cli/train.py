"""Train a simplepose model, in one process or under torchrun.

    python train_dist.py --config configs/imhn_tiny.yaml
    python train_dist.py --config configs/imhn_tiny.yaml --opts train.output_dir=runs/t lr=1e-4
    torchrun --standalone --nproc_per_node=4 train_dist.py --config configs/imhn_512_coco.yaml
    torchrun --standalone --nproc_per_node=4 train_dist.py --config configs/imhn_512_coco.yaml \\
        --resume                      # continue from <output_dir>/last.pt (or --resume PATH)

The library does the work (:mod:`simplepose.config`, :mod:`simplepose.engine.loop`); this
script parses arguments, sets up logging, and turns bad input into a one-line error (exit 2).
"""

from __future__ import annotations

import argparse
import logging
import sys


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
    return parser


def _setup_logging(level: str, rank: int) -> None:
    # Non-zero ranks only report warnings and errors, so the log reads like one process.
    logging.basicConfig(
        level=getattr(logging, level) if rank == 0 else logging.WARNING,
        format=f"%(asctime)s [rank {rank}] %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )


def _fail(prog: str, message: str) -> int:
    print(f"{prog}: error: {message}", file=sys.stderr)
    return 2


def main(argv=None, prog: str | None = None) -> int:
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    prog = parser.prog
    import os

    rank = int(os.environ.get("RANK", "0") or 0)
    _setup_logging(args.log_level, rank)

    from simplepose.config import ConfigError, load_config
    from simplepose.errors import SimplePoseError

    try:
        cfg = load_config(args.config, args.opts)
    except ConfigError as exc:
        return _fail(prog, str(exc))

    from simplepose import dist
    from simplepose.engine.loop import Trainer

    info = None
    try:
        info = dist.init_distributed(cfg.train.device)
        trainer = Trainer(cfg, dist_info=info)
        if args.resume is not None:
            trainer.resume(args.resume or None)
        final = trainer.fit()
    except (SimplePoseError, FileNotFoundError) as exc:
        return _fail(prog, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    finally:
        dist.cleanup()
    if info is None or info.is_main:
        print(f"done: {trainer.iteration} iterations, final model {final}")
    return 0

