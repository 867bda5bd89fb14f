"""End-to-end demo speed on a video: a thin wrapper around :mod:`simplepose.cli.bench`
(the same as ``simplepose bench``; ``--help`` for the options)."""

from simplepose.cli.bench import main

if __name__ == "__main__":
    raise SystemExit(main())
