"""Run a pose model on an image, a folder, a video or a webcam: a thin wrapper around
:mod:`simplepose.cli.demo` (``python demo.py --help`` for the options)."""

from simplepose.cli.demo import main

if __name__ == "__main__":
    raise SystemExit(main())
