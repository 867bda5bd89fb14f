"""Shared test fixtures: paths to the committed sample and to ../shared (CI has it)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SAMPLE_ANN = REPO / "tests" / "data" / "coco_sample" / "annotations.json"
VAL_ANN = SHARED / "data" / "coco" / "annotations" / "person_keypoints_val2017_subset.json"
VAL_IMAGES = SHARED / "data" / "coco" / "val2017"


def pytest_addoption(parser):
    parser.addoption(
        "--slow", action="store_true", help="also run the slow end-to-end tests (CI does)"
    )


def pytest_collection_modifyitems(config, items):
    """Skip ``slow`` tests unless --slow; skip ``gpu`` tests when no CUDA device is present."""
    if not config.getoption("--slow"):
        skip_slow = pytest.mark.skip(reason="slow: run with --slow")
        for item in items:
            if "slow" in item.keywords:
                item.add_marker(skip_slow)
    gpu_items = [item for item in items if "gpu" in item.keywords]
    if not gpu_items:  # do not pay for importing torch
        return
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:  # pragma: no cover
        has_cuda = False
    if has_cuda:
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in gpu_items:
        item.add_marker(skip)


@pytest.fixture(scope="session")
def sample_ann():
    from simplepose.data.coco import load_coco_keypoints

    return load_coco_keypoints(SAMPLE_ANN)


@pytest.fixture(scope="session")
def val_ann():
    if not VAL_ANN.exists():
        pytest.skip(f"shared val annotations not found at {VAL_ANN}")
    from simplepose.data.coco import load_coco_keypoints

    return load_coco_keypoints(VAL_ANN)


def _tiny_checkpoint(tmp_path_factory, name: str, **kwargs):
    """A simplepose checkpoint of a small, randomly initialised ``name`` model."""
    from simplepose.checkpoint import save_model
    from simplepose.spec import get_spec

    path = tmp_path_factory.mktemp("ckpt") / f"{name}_tiny.safetensors"
    spec = get_spec(name).with_kwargs(**kwargs)
    save_model(path, spec, spec.build_model().state_dict())
    return path


@pytest.fixture(scope="session")
def tiny_imhn_checkpoint(tmp_path_factory):
    """1-stack narrow IMHN (bottom-up)."""
    return _tiny_checkpoint(tmp_path_factory, "imhn", num_stacks=1, inp_dim=32, increase=16)


@pytest.fixture(scope="session")
def tiny_rsn_checkpoint(tmp_path_factory):
    """RSN-18, 1 stage, 128x96 input (top-down)."""
    return _tiny_checkpoint(tmp_path_factory, "rsn18", num_stages=1, input_size=(128, 96))


@pytest.fixture
def one_thread():
    """torch single-threaded for the test: real-network forwards on a shared 2-core machine
    are far faster so."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def run_cli(capsys):
    """Run a command's ``main(argv)`` in this process (no interpreter or torch start-up).

    ``run_cli("evaluate", *args)`` calls :func:`simplepose.cli.evaluate.main` with the
    arguments as strings and ``prog`` set to the top-level script's name, and returns a
    ``subprocess.CompletedProcess`` with the exit status and the captured stdout / stderr. An
    argparse usage error (``SystemExit``) becomes its exit status, as in a subprocess.
    """
    import importlib
    import subprocess

    scripts = {"evaluate": "evaluate.py", "demo": "demo.py", "train": "train_dist.py",
               "convert": "convert_checkpoint.py"}

    def run(command: str, *args) -> subprocess.CompletedProcess:
        main = importlib.import_module(f"simplepose.cli.{command}").main
        argv = [str(a) for a in args]
        capsys.readouterr()  # drop what came before
        try:
            code = main(argv, prog=scripts.get(command, command))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 2
        out = capsys.readouterr()
        return subprocess.CompletedProcess(argv, code, out.out, out.err)

    return run
