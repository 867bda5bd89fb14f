"""Model checkpoints: one safetensors file per model, rebuildable from the file alone.

Format (``format_version`` "1"): a ``.safetensors`` file whose tensors are the model's
``state_dict()`` and whose string metadata holds

* ``simplepose_model``: the registry name (:data:`simplepose.models.MODELS`), e.g. ``"imhn"``;
* ``model_kwargs``: JSON of the keyword overrides passed to ``build_model(name, **kwargs)``;
* ``format_version``: ``"1"``;
* anything from ``extra_meta`` (string values as they are, other values JSON-encoded).

Loading never unpickles: safetensors holds raw tensor bytes and a JSON header only. Legacy ``.pth``
files are read by :func:`load_state_dict_any` with ``torch.load(weights_only=True)``, which refuses
arbitrary Python objects.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError

from simplepose.errors import CheckpointError, InputError
from simplepose.utils.io import atomic_path
from simplepose.utils.state_dict import state_dict_diff

__all__ = [
    "FORMAT_VERSION",
    "build_and_load",
    "load_model",
    "load_state_dict_any",
    "read_metadata",
    "save_model",
]

LOG = logging.getLogger(__name__)

FORMAT_VERSION = "1"
_RESERVED = ("simplepose_model", "model_kwargs", "format_version")
# What safetensors raises for a bad header, truncated data or an unreadable file.
_SAFETENSORS_ERRORS = (SafetensorError, OSError, ValueError, RuntimeError)
_PICKLE_SUFFIXES = (".pth", ".pt", ".pkl", ".pickle", ".tar", ".bin", ".ckpt")


def _build(model_name: str, model_kwargs: dict, device=None):
    from simplepose.models import build_model

    try:
        if device is None:
            return build_model(model_name, **model_kwargs)
        with torch.device(device):
            return build_model(model_name, **model_kwargs)
    except KeyError as exc:
        raise CheckpointError(f"cannot build model {model_name!r}: {exc}") from None
    except (TypeError, InputError) as exc:
        raise CheckpointError(
            f"cannot build model {model_name!r} with {model_kwargs}: {exc}"
        ) from None


def build_and_load(
    model_name: str, model_kwargs: dict, state_dict: Mapping, source: str = "state dict"
):
    """Build ``model_name`` with ``model_kwargs`` and load ``state_dict`` strictly.

    The model is built on the meta device and the tensors are assigned (no random init, no copy;
    the model takes the state dict's device and dtype). Models with tied weights or with tensors
    that the state dict does not carry (non-persistent buffers) are built normally and the values
    copied in.

    Raises:
        CheckpointError: the model cannot be built, or keys/shapes differ (the message lists them).
    """
    model = _build(model_name, model_kwargs, device="meta")
    named = list(model.named_parameters(remove_duplicate=False))
    if len({id(p) for _, p in named}) != len(named):  # tied weights: assign would untie them
        model = _build(model_name, model_kwargs)
    diff = state_dict_diff(model.state_dict(), state_dict)
    if diff:
        raise CheckpointError(
            f"{source} does not match model {model_name!r} {model_kwargs}: {diff}"
        )
    if not any(t.is_meta for t in model.parameters()):
        model.load_state_dict(state_dict, strict=True)
        return model
    model.load_state_dict(state_dict, strict=True, assign=True)
    if any(t.is_meta for t in list(model.parameters()) + list(model.buffers())):
        LOG.debug("%s has tensors outside its state dict; building it normally", model_name)
        model = _build(model_name, model_kwargs)
        model.load_state_dict(state_dict, strict=True)
    return model


def _encode_meta(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def save_model(
    path,
    model_name: str,
    model_kwargs: dict,
    state_dict: Mapping,
    extra_meta: dict | None = None,
    verify: bool = True,
) -> Path:
    """Write ``state_dict`` and the rebuild recipe to ``path`` (safetensors, atomic).

    Args:
        path: destination file (its folder must exist).
        model_name: registry name for :func:`simplepose.models.build_model`.
        model_kwargs: JSON-serialisable keyword overrides for the builder.
        state_dict: ``{key: tensor}`` (moved to CPU; tensors sharing storage are copied).
        extra_meta: more metadata (e.g. ``{"epoch": 3}``); may not redefine the reserved keys.
        verify: check the keys and shapes against ``build_model(model_name, **model_kwargs)``
            (built on the meta device, so it costs no memory) before writing.

    Returns:
        the written path.
    """
    from safetensors.torch import save_file

    try:
        kwargs_json = json.dumps(model_kwargs, sort_keys=True)
    except TypeError as exc:
        raise CheckpointError(f"model_kwargs must be JSON-serialisable: {exc}") from None
    extra_meta = dict(extra_meta or {})
    clash = sorted(set(extra_meta) & set(_RESERVED))
    if clash:
        raise CheckpointError(f"extra_meta may not set the reserved keys {clash}")
    if verify:
        expected = _build(model_name, dict(model_kwargs), device="meta").state_dict()
        diff = state_dict_diff(expected, state_dict)
        if diff:
            raise CheckpointError(
                f"state dict does not match model {model_name!r} {model_kwargs}: {diff}"
            )
    tensors, seen = {}, set()
    for key, value in state_dict.items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(
                f"state dict entry {key!r} is a {type(value).__name__}, not a tensor"
            )
        t = value.detach().to("cpu").contiguous()
        ptr = t.untyped_storage().data_ptr()
        # safetensors refuses tensors that share memory or view part of a larger storage
        if ptr in seen or t.untyped_storage().nbytes() != t.nbytes:
            t = t.clone()
        seen.add(t.untyped_storage().data_ptr())
        tensors[key] = t
    metadata = {
        "simplepose_model": model_name,
        "model_kwargs": kwargs_json,
        "format_version": FORMAT_VERSION,
    }
    metadata.update({str(k): _encode_meta(v) for k, v in extra_meta.items()})
    path = Path(path)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    LOG.info("saved %s checkpoint (%d tensors) to %s", model_name, len(tensors), path)
    return path


def read_metadata(path) -> dict:
    """The metadata of a simplepose checkpoint, ``model_kwargs`` decoded to a dict.

    Raises CheckpointError for a missing or unreadable file and for missing simplepose metadata.
    """
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            raw = f.metadata() or {}
    except _SAFETENSORS_ERRORS as exc:
        raise CheckpointError(f"{path} is not a readable safetensors file ({exc})") from None
    missing = [k for k in _RESERVED if k not in raw]
    if missing:
        raise CheckpointError(f"{path} is not a simplepose checkpoint: metadata lacks {missing}")
    if raw["format_version"] != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format {raw['format_version']!r}; this version "
            f"reads {FORMAT_VERSION!r}"
        )
    meta = dict(raw)
    try:
        meta["model_kwargs"] = json.loads(raw["model_kwargs"])
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: model_kwargs metadata is not JSON ({exc})") from None
    if not isinstance(meta["model_kwargs"], dict):
        raise CheckpointError(f"{path}: model_kwargs metadata is not a JSON object")
    return meta


def load_model(path, map_location="cpu", expected_model: str | None = None):
    """Rebuild the model stored in ``path`` and load its weights strictly.

    Args:
        path: a file written by :func:`save_model`.
        map_location: device for the tensors (e.g. ``"cpu"``, ``"cuda:0"``).
        expected_model: if given, refuse a checkpoint of any other registered model.

    Returns:
        ``(model, meta)``: the model on ``map_location`` in eval mode, and the metadata dict
        (``simplepose_model``, ``model_kwargs`` as a dict, ``format_version``, extra entries as
        strings).

    Raises:
        CheckpointError: missing, corrupt or non-safetensors file, missing metadata, another model's
        checkpoint, or keys/shapes that do not match the rebuilt model (listed).
    """
    from safetensors.torch import load_file

    meta = read_metadata(path)
    name = meta["simplepose_model"]
    if expected_model is not None and name != expected_model:
        raise CheckpointError(f"{path} holds a {name!r} model, expected {expected_model!r}")
    try:
        state_dict = load_file(str(path), device=str(map_location))
    except _SAFETENSORS_ERRORS as exc:  # truncated data section, bad offsets, ...
        raise CheckpointError(f"{path}: cannot read tensors ({exc})") from None
    model = build_and_load(name, meta["model_kwargs"], state_dict, source=str(path))
    model.eval()
    LOG.info("loaded %s %s from %s", name, meta["model_kwargs"], path)
    return model, meta


def load_state_dict_any(path):
    """Read a weights file without executing code: ``.safetensors`` or a torch pickle.

    ``.safetensors`` files are read with safetensors; anything else (``.pth``, ``.pt``, ``.pkl``,
    ...) with ``torch.load(map_location="cpu", weights_only=True)``, which only reconstructs tensors
    and plain containers and refuses any other pickled global. Returns what the file holds: usually
    a ``{key: tensor}`` dict or a checkpoint dict such as ``{"weights": {...}, "epoch": 3}``.

    Raises:
        CheckpointError: missing file, unreadable file, or a pickle that needs arbitrary objects.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except _SAFETENSORS_ERRORS as exc:
            raise CheckpointError(f"{path} is not a readable safetensors file ({exc})") from None
    if path.suffix not in _PICKLE_SUFFIXES:
        LOG.warning(
            "%s: unknown suffix %r, reading it as a torch file (weights_only)", path, path.suffix
        )
    return torch_load_safe(path, "torch weights file")


def torch_load_safe(path, what: str):
    """``torch.load(path, weights_only=True)`` on CPU: tensors and plain containers only.

    A pickle that needs any other object is refused (never executed) and every failure is a
    :class:`CheckpointError` naming ``path`` and ``what`` was expected.
    """
    try:
        return torch.load(os.fspath(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CheckpointError(
            f"{path}: refusing to unpickle objects other than tensors and plain "
            f"containers (weights_only=True): {first}"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a readable {what} ({exc})") from None
