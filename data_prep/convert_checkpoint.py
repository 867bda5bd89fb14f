"""Convert a released checkpoint (SimplePose, pytorch-cpn, MSPN, RSN) to simplepose safetensors:
a thin wrapper around :mod:`simplepose.cli.convert` (``--help`` for the options)."""

try:
    from simplepose.cli.convert import main
except ImportError as _exc:  # pragma: no cover - depends on the environment
    raise SystemExit(
        f"cannot import simplepose ({_exc}); run `pip install -e .` in the repository root "
        "or prefix the command with `PYTHONPATH=.`"
    ) from _exc

if __name__ == "__main__":
    raise SystemExit(main())
