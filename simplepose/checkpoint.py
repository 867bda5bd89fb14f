"""Model checkpoints: one safetensors file per model, rebuildable from the file alone.

Format (``format_version`` "1"): a ``.safetensors`` file whose tensors are the model's
``state_dict()`` and whose string metadata holds

* ``simplepose_spec``: JSON of the whole :class:`~simplepose.spec.PoseModelSpec` (builder and
  kwargs, paradigm, keypoint layout, codec with all its parameters, input normalisation, output
  adapter, loss, inference defaults): the model, its codec and its pipeline are rebuilt from
  it alone, with nothing looked up by name;
* ``simplepose_model``: the spec's name, e.g. ``"imhn"``;
* ``model_kwargs``: JSON of the spec's builder kwargs;
* ``format_version``: ``"1"``;
* anything from ``extra_meta`` (string values as they are, other values JSON-encoded).

Checkpoints written before the spec existed hold only ``simplepose_model`` and
``model_kwargs``: :func:`read_metadata` fills their spec from the registered spec of that name
with those kwargs (:func:`spec_from_legacy_metadata`).

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
from simplepose.spec import PoseModelSpec
from simplepose.utils.io import atomic_path
from simplepose.utils.state_dict import state_dict_diff

__all__ = [
    "FORMAT_VERSION",
    "build_and_load",
    "load_model",
    "load_state_dict_any",
    "read_metadata",
    "save_model",
    "spec_from_legacy_metadata",
]

LOG = logging.getLogger(__name__)

FORMAT_VERSION = "1"
_RESERVED = ("simplepose_model", "model_kwargs", "format_version", "simplepose_spec")
_REQUIRED = ("simplepose_model", "model_kwargs", "format_version")
# What safetensors raises for a bad header, truncated data or an unreadable file.
_SAFETENSORS_ERRORS = (SafetensorError, OSError, ValueError, RuntimeError)
_PICKLE_SUFFIXES = (".pth", ".pt", ".pkl", ".pickle", ".tar", ".bin", ".ckpt")


def _build(spec: PoseModelSpec, device=None):
    try:
        if device is None:
            return spec.build_model()
        with torch.device(device):
            return spec.build_model()
    except (TypeError, InputError) as exc:
        raise CheckpointError(
            f"cannot build model {spec.name!r} with {spec.kwargs}: {exc}"
        ) from None


def build_and_load(spec: PoseModelSpec, state_dict: Mapping, source: str = "state dict"):
    """Build the model of ``spec`` and load ``state_dict`` strictly.

    The model is built on the meta device and the tensors are assigned (no random init, no copy;
    the model takes the state dict's device and dtype). Models with tied weights or with tensors
    that the state dict does not carry (non-persistent buffers) are built normally and the values
    copied in.

    Raises:
        CheckpointError: the model cannot be built, or keys/shapes differ (the message lists them).
    """
    model = _build(spec, device="meta")
    named = list(model.named_parameters(remove_duplicate=False))
    if len({id(p) for _, p in named}) != len(named):  # tied weights: assign would untie them
        model = _build(spec)
    diff = state_dict_diff(model.state_dict(), state_dict)
    if diff:
        raise CheckpointError(f"{source} does not match model {spec.name!r} {spec.kwargs}: {diff}")
    if not any(t.is_meta for t in model.parameters()):
        model.load_state_dict(state_dict, strict=True)
        return model
    model.load_state_dict(state_dict, strict=True, assign=True)
    if any(t.is_meta for t in list(model.parameters()) + list(model.buffers())):
        LOG.debug("%s has tensors outside its state dict; building it normally", spec.name)
        model = _build(spec)
        model.load_state_dict(state_dict, strict=True)
    return model


def _encode_meta(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def save_model(
    path,
    spec: PoseModelSpec,
    state_dict: Mapping,
    extra_meta: dict | None = None,
    verify: bool = True,
) -> Path:
    """Write ``state_dict`` and the model's whole spec to ``path`` (safetensors, atomic).

    Args:
        path: destination file (its folder must exist).
        spec: the model's :class:`~simplepose.spec.PoseModelSpec` (builder kwargs included).
        state_dict: ``{key: tensor}`` (moved to CPU; tensors sharing storage are copied).
        extra_meta: more metadata (e.g. ``{"epoch": 3}``); may not redefine the reserved keys.
        verify: check the keys and shapes against ``spec.build_model()`` (built on the meta
            device, so it costs no memory) before writing.

    Returns:
        the written path.
    """
    from safetensors.torch import save_file

    if not isinstance(spec, PoseModelSpec):
        raise CheckpointError(f"save_model needs a PoseModelSpec, got {type(spec).__name__}")
    extra_meta = dict(extra_meta or {})
    clash = sorted(set(extra_meta) & set(_RESERVED))
    if clash:
        raise CheckpointError(f"extra_meta may not set the reserved keys {clash}")
    if verify:
        expected = _build(spec, device="meta").state_dict()
        diff = state_dict_diff(expected, state_dict)
        if diff:
            raise CheckpointError(
                f"state dict does not match model {spec.name!r} {spec.kwargs}: {diff}"
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
        "simplepose_spec": spec.to_json(),
        "simplepose_model": spec.name,
        "model_kwargs": json.dumps(spec.kwargs, sort_keys=True),
        "format_version": FORMAT_VERSION,
    }
    metadata.update({str(k): _encode_meta(v) for k, v in extra_meta.items()})
    path = Path(path)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    LOG.info("saved %s checkpoint (%d tensors) to %s", spec.name, len(tensors), path)
    return path


def spec_from_legacy_metadata(model_name: str, model_kwargs: dict) -> PoseModelSpec:
    """The spec of a checkpoint written before checkpoints carried one: the registered spec of
    ``model_name`` with the builder ``model_kwargs`` (a top-down ``input_size`` also sets the
    codec's input size, as the pipelines did then).

    Raises:
        CheckpointError: the name is not registered, or the kwargs do not fit its spec.
    """
    from simplepose.spec import get_spec

    try:
        return get_spec(model_name).with_kwargs(**model_kwargs)
    except InputError as exc:
        raise CheckpointError(
            f"cannot rebuild the spec of an old {model_name!r} checkpoint: {exc}"
        ) from None


def read_metadata(path) -> dict:
    """The metadata of a simplepose checkpoint: ``model_kwargs`` decoded to a dict and ``spec``
    the :class:`~simplepose.spec.PoseModelSpec` (from ``simplepose_spec``, or filled from the
    old metadata of a checkpoint written before specs, see :func:`spec_from_legacy_metadata`).

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
    missing = [k for k in _REQUIRED if k not in raw]
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
    if "simplepose_spec" in raw:
        try:
            meta["spec"] = PoseModelSpec.from_json(raw["simplepose_spec"])
        except InputError as exc:
            raise CheckpointError(f"{path}: invalid simplepose_spec metadata ({exc})") from None
    else:
        meta["spec"] = spec_from_legacy_metadata(raw["simplepose_model"], meta["model_kwargs"])
        LOG.info("%s predates model specs: spec filled from simplepose_model %r and its kwargs",
                 path, raw["simplepose_model"])
    return meta


def load_model(path, map_location="cpu", expected_model: str | None = None):
    """Rebuild the model stored in ``path`` and load its weights strictly.

    Args:
        path: a file written by :func:`save_model`.
        map_location: device for the tensors (e.g. ``"cpu"``, ``"cuda:0"``).
        expected_model: if given, refuse a checkpoint of any other registered model.

    Returns:
        ``(model, meta)``: the model on ``map_location`` in eval mode, and the metadata dict
        (``spec``: the :class:`~simplepose.spec.PoseModelSpec`; ``simplepose_model``,
        ``model_kwargs`` as a dict, ``format_version``, extra entries as strings).

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
    model = build_and_load(meta["spec"], state_dict, source=str(path))
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
