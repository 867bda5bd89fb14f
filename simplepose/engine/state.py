"""Training state: RNG capture / restore and the training checkpoint (``last.pt``).

Training checkpoint (``torch.save`` of tensors and plain containers only, loaded back with
``torch.load(weights_only=True)`` so a crafted pickle is refused): ``format``, ``model``,
``optimizer``, ``scaler``, ``iteration``, ``epoch``, ``step_in_epoch``, ``skipped_batches``,
``world_size``, ``rng`` (a list with the python / numpy / torch / cuda RNG states of every rank)
and ``config`` (:func:`simplepose.config.config_to_dict`).
"""

from __future__ import annotations

import logging
import random
from pathlib import Path

import numpy as np
import torch

from simplepose.checkpoint import torch_load_safe
from simplepose.errors import CheckpointError
from simplepose.utils.io import atomic_path

__all__ = [
    "CHECKPOINT_FORMAT",
    "capture_rng_state",
    "config_changes",
    "load_training_checkpoint",
    "restore_rng_state",
    "save_training_checkpoint",
    "seed_everything",
    "worker_init",
]

LOG = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "simplepose-train-1"


# ------------------------------------------------------------------ RNG
def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def capture_rng_state() -> dict:
    """RNG states of this process as tensors / plain containers (``weights_only``-loadable)."""
    np_state = np.random.get_state(legacy=False)
    np_state["state"]["key"] = torch.from_numpy(np_state["state"]["key"].astype(np.int64))
    state = {"python": random.getstate(), "numpy": np_state, "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    """Inverse of :func:`capture_rng_state`."""
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    np_state = dict(state["numpy"])
    inner = dict(np_state["state"])
    inner["key"] = np.asarray(inner["key"].numpy(), dtype=np.uint32)
    np_state["state"] = inner
    np.random.set_state(np_state)
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def worker_init(worker_id: int) -> None:
    # torch seeds each worker with base_seed + worker_id (base_seed from the loader's
    # generator); derive python / numpy from it so workers never share a stream.
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)
    # one thread per worker: N workers with full OpenCV / torch pools oversubscribe the CPU
    torch.set_num_threads(1)
    try:
        import cv2

        cv2.setNumThreads(1)
    except ImportError:  # pragma: no cover
        pass


# ------------------------------------------------------------------ checkpoints
def save_training_checkpoint(state: dict, path) -> Path:
    """Write a training checkpoint dict (see the module docstring) atomically to ``path``."""
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return path


def load_training_checkpoint(path) -> dict:
    """Read a training checkpoint with ``torch.load(weights_only=True)``.

    Raises:
        CheckpointError: missing file, a pickle that needs arbitrary Python objects (refused,
            never executed), an unreadable file or one without the simplepose fields.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"training checkpoint {path} does not exist")
    state = torch_load_safe(path, "training checkpoint")
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a simplepose training checkpoint "
                              f"(format {CHECKPOINT_FORMAT!r})")
    missing = [k for k in ("model", "optimizer", "iteration", "epoch", "step_in_epoch", "config")
               if k not in state]
    if missing:
        raise CheckpointError(f"{path}: training checkpoint lacks {missing}")
    return state


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and not (prefix + k).startswith("model.kwargs"):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out



def config_changes(saved: dict, current: dict) -> list[str]:
    """Dotted config keys whose values differ between two :func:`config_to_dict` dicts
    (``train.output_dir`` excluded; ``model.kwargs`` compared as one value)."""
    old, new = _flatten(saved), _flatten(current)
    return sorted(k for k in set(old) | set(new)
                  if old.get(k) != new.get(k) and k != "train.output_dir")
