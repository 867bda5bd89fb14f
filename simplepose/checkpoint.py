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

Metadata is untrusted input: :func:`validate_metadata` checks every field of ``model_kwargs``
and of the spec against sane bounds (e.g. a top-down ``input_size`` side above 1024 px is
refused with the field named) and only accepts builders of registered specs or of
``simplepose.models``, before anything is imported, built or allocated. Floating-point weights
stored in another precision (fp16, bf16, fp64) are cast to the model's dtype on load.

Loading never unpickles: safetensors holds raw tensor bytes and a JSON header only. Legacy ``.pth``
files are read by :func:`load_state_dict_any` with ``torch.load(weights_only=True)``, which refuses
arbitrary Python objects.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import re
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError

from simplepose.errors import CheckpointError, InputError
from simplepose.spec import PoseModelSpec
from simplepose.utils.io import atomic_path, loads_json
from simplepose.utils.state_dict import state_dict_diff

__all__ = [
    "FORMAT_VERSION",
    "build_and_load",
    "extra_metadata",
    "load_model",
    "load_state_dict_any",
    "read_metadata",
    "save_model",
    "spec_from_legacy_metadata",
    "validate_metadata",
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
    state_dict = _match_dtypes(model.state_dict(), state_dict, source)
    if not any(t.is_meta for t in model.parameters()):
        model.load_state_dict(state_dict, strict=True)
        return model
    model.load_state_dict(state_dict, strict=True, assign=True)
    if any(t.is_meta for t in list(model.parameters()) + list(model.buffers())):
        LOG.debug("%s has tensors outside its state dict; building it normally", spec.name)
        model = _build(spec)
        model.load_state_dict(state_dict, strict=True)
    return model


def _match_dtypes(expected: Mapping, state_dict: Mapping, source: str) -> dict:
    """``state_dict`` with floating tensors cast to the dtypes of ``expected`` (fp16 / bf16 /
    fp64 weights load into a float32 model); any other dtype mismatch is a CheckpointError."""
    out, cast = {}, set()
    for key, t in state_dict.items():
        want = expected[key].dtype
        if t.dtype != want:
            if not (t.dtype.is_floating_point and want.is_floating_point):
                raise CheckpointError(
                    f"{source}: tensor {key!r} is {t.dtype}, the model expects {want}"
                )
            cast.add(f"{t.dtype} -> {want}")
            t = t.to(want)
        out[key] = t
    if cast:
        LOG.info("%s: cast weights %s", source, ", ".join(sorted(cast)))
    return out


# ------------------------------------------------------------------ metadata bounds
#: Sane bounds of numeric metadata by field name, wherever the name occurs (``model_kwargs``,
#: the spec's ``kwargs`` / ``codec`` / ``inference``, extra metadata). These are the fields that
#: size activations or loops (the weights' own size is bounded by the file). A tampered or
#: corrupt value outside them is refused before anything is imported or allocated.
METADATA_BOUNDS: dict[str, tuple[float, float]] = {
    "input_size": (16, 1024),  # top-down network input side (px): 1024 x 1024 ~ 0.25 GB / box
    "input_hw": (16, 1024),
    "heatmap_hw": (1, 1024),
    "box_size": (16, 4096),  # bottom-up input height (px)
    "pad_multiple": (1, 512),
    "stride": (1, 64),
    "kernels": (1, 255),  # Gaussian kernel sides (px)
    "decode_kernel": (1, 255),
    "pad": (0, 1024),
    "num_stacks": (1, 16),
    "num_stages": (1, 16),
    "num_scales": (1, 8),
    "depth": (1, 8),
    "iteration": (0, 10**12),
    "epoch": (0, 10**9),
}
_INT_BOUNDS = (-(2**31), 2**31 - 1)  # any other integer: a C int
_FLOAT_BOUNDS = (-1e12, 1e12)  # any other number: finite
_MAX_LIST = 64
_MAX_STRING = 256
_MAX_DEPTH = 6
_SPEC_SECTIONS = ("kwargs", "codec", "inference", "input")


def _check_value(field: str, value, bounds: tuple[float, float] | None, depth: int = 0) -> None:
    """Raise ValueError naming ``field`` when ``value`` (a decoded JSON value) is out of bounds."""
    if depth > _MAX_DEPTH:
        raise ValueError(f"{field} is nested too deeply")
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, (int, float)):
        lo, hi = bounds or (_INT_BOUNDS if isinstance(value, int) else _FLOAT_BOUNDS)
        if not lo <= value <= hi:  # also NaN
            raise ValueError(f"{field} = {value} is outside [{lo}, {hi}]")
        return
    if isinstance(value, str):
        if len(value) > _MAX_STRING:
            raise ValueError(f"{field} is a string of {len(value)} characters (max {_MAX_STRING})")
        return
    if isinstance(value, list):
        if len(value) > _MAX_LIST:
            raise ValueError(f"{field} has {len(value)} items (max {_MAX_LIST})")
        for i, item in enumerate(value):
            _check_value(f"{field}[{i}]", item, bounds, depth + 1)
        return
    if isinstance(value, dict):
        for k, item in value.items():
            _check_value(f"{field}.{k}", item, METADATA_BOUNDS.get(k), depth + 1)
        return
    raise ValueError(f"{field} has an unsupported type {type(value).__name__}")


def _check_builder(builder) -> None:
    """A checkpoint may only name a builder of a registered spec or one in simplepose.models:
    importing and calling any other ``module:function`` from a file would run its code."""
    from simplepose.spec import registered_specs

    if not isinstance(builder, str):
        raise ValueError(f"spec.builder = {str(builder)[:80]!r} is not a string")  # noqa: TRY004 - reported as CheckpointError
    if builder in {s.builder for s in registered_specs()}:
        return
    module = builder.split(":", 1)[0]
    if not re.fullmatch(r"simplepose\.models\.[A-Za-z_][A-Za-z0-9_]*", module):
        raise ValueError(
            f"spec.builder = {builder[:80]!r} is neither a registered model's builder nor in "
            f"simplepose.models (register its spec before loading)"
        )


def validate_metadata(meta: Mapping, source: str = "checkpoint",
                      spec: Mapping | None = None) -> None:
    """Check decoded checkpoint metadata against sane bounds before anything is built.

    Args:
        meta: :func:`read_metadata`'s dict (``model_kwargs`` decoded, extra fields as strings).
        source: the file, for messages.
        spec: the decoded ``simplepose_spec`` JSON (before :class:`PoseModelSpec` is built).

    Checked: numbers named in :data:`METADATA_BOUNDS` (anywhere in ``model_kwargs`` and the spec's
    ``kwargs``, ``codec``, ``inference``, ``input``), every other number (finite, integers within
    a C int), lists of at most 64 items, strings of at most 256 characters, nesting of at most 6
    levels; the spec's builder (a registered spec's, or in ``simplepose.models``); the numeric
    extra fields ``iteration`` and ``epoch``.

    Raises:
        CheckpointError: ``"<source>: metadata field model_kwargs.input_size[0] = 8192 is outside
        [16, 1024]"``.
    """
    try:
        kwargs = meta.get("model_kwargs") or {}
        if not isinstance(kwargs, Mapping):
            raise ValueError(f"model_kwargs is a {type(kwargs).__name__}, not an object")  # noqa: TRY004
        for key, value in kwargs.items():
            _check_value(f"model_kwargs.{key}", value, METADATA_BOUNDS.get(key))
        if spec is not None:
            if not isinstance(spec, Mapping):
                raise ValueError(f"simplepose_spec is a {type(spec).__name__}, not an object")
            _check_builder(spec.get("builder"))
            for key, value in spec.items():
                where = f"spec.{key}"
                if key in _SPEC_SECTIONS and not isinstance(value, Mapping):
                    raise ValueError(f"{where} is a {type(value).__name__}, not an object")
                _check_value(where, value, METADATA_BOUNDS.get(key))
        for key in ("iteration", "epoch"):
            if key in meta:
                raw = meta[key]
                try:
                    value = json.loads(raw) if isinstance(raw, str) else raw
                except json.JSONDecodeError:
                    raise ValueError(f"{key} = {str(raw)[:40]!r} is not a number") from None
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise ValueError(f"{key} = {str(raw)[:40]!r} is not a number")
                _check_value(key, value, METADATA_BOUNDS[key])
    except ValueError as exc:
        raise CheckpointError(f"{source}: metadata field {exc}") from None


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
        meta["model_kwargs"] = loads_json(raw["model_kwargs"], "model_kwargs metadata")
        spec_dict = (loads_json(raw["simplepose_spec"], "simplepose_spec metadata")
                     if "simplepose_spec" in raw else None)
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: metadata is not JSON ({exc})") from None
    except ValueError as exc:  # nested too deeply
        raise CheckpointError(f"{path}: {exc}") from None
    if not isinstance(meta["model_kwargs"], dict):
        raise CheckpointError(f"{path}: model_kwargs metadata is not a JSON object")
    validate_metadata(meta, str(path), spec_dict)
    if spec_dict is not None:
        try:
            meta["spec"] = PoseModelSpec.from_dict(spec_dict)
        except InputError as exc:
            raise CheckpointError(f"{path}: invalid simplepose_spec metadata ({exc})") from None
    else:
        meta["spec"] = spec_from_legacy_metadata(raw["simplepose_model"], meta["model_kwargs"])
        LOG.info("%s predates model specs: spec filled from simplepose_model %r and its kwargs",
                 path, raw["simplepose_model"])
    return meta


def extra_metadata(meta: Mapping) -> dict:
    """The entries of :func:`read_metadata`'s dict other than the rebuild recipe (``spec`` and
    the reserved keys): what the checkpoint's writer added, e.g. ``epoch``."""
    return {k: v for k, v in meta.items() if k != "spec" and k not in _RESERVED}


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
        raise CheckpointError(
            f"{path}: refusing to unpickle objects other than tensors and plain "
            f"containers: {_unpickling_reason(exc)}"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        first = re.split(r"(?<=\.)\s", str(exc).strip(), maxsplit=1)[0] or type(exc).__name__
        raise CheckpointError(f"{path} is not a readable {what} ({first})") from None


def _unpickling_reason(exc: BaseException) -> str:
    """What torch's weights_only unpickler refused, without its advice to load the file
    unsafely (the caller refuses the file; it must not suggest executing it)."""
    text = str(exc)
    m = re.search(r"WeightsUnpickler error:\s*(.*?)(?:\s+Please use|\s*$)", text, re.DOTALL)
    reason = m.group(1) if m else ""
    if not reason:  # another message: keep the lines that do not advise unsafe loading
        lines = [ln.strip() for ln in text.splitlines()
                 if ln.strip() and "weights_only" not in ln and "can still be loaded" not in ln]
        reason = lines[0] if lines else type(exc).__name__
    return re.sub(r"\s+", " ", reason).strip().rstrip(".")
