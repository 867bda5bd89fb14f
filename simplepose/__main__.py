"""``python -m simplepose <command> ...``: the same as the ``simplepose`` console command."""

from simplepose.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
