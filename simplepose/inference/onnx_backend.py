"""ONNX Runtime backend: an exported simplepose network as a drop-in for the torch model.

:class:`OnnxRuntimeModel` loads a file written by :mod:`simplepose.export`, checks its simplepose
metadata and behaves like the torch module's forward: it takes the same (N, 3, H, W) float32
network input (torch tensor or numpy array, already normalised as the metadata's ``input``
entry describes) and returns the same nested output structure (lists / tuples of (N, C, h, w)
maps in heatmap px), as torch tensors when the input was a torch tensor and numpy arrays
otherwise. The inference pipelines therefore run their own prepare / decode unchanged.

Metadata (ONNX ``metadata_props``, every value a string; JSON where noted), written by
:func:`encode_metadata` and read by :func:`read_onnx_metadata`:

* ``simplepose_format``: ``"1"``;
* ``simplepose_spec``: JSON of the whole :class:`~simplepose.spec.PoseModelSpec` (codec and
  its parameters, keypoint layout, input normalisation, output adapter, default inference
  options), decoded into ``meta["spec"]``: the pipelines need nothing else;
* ``simplepose_model``, ``model_kwargs``, ``simplepose_paradigm``: the spec's name, builder
  kwargs and paradigm, repeated for readers without simplepose;
* ``simplepose_input``: JSON ``{"name", "layout": "NCHW", "dtype": "float32", "batch":
  "dynamic", "height", "width", "channel_order", "mean", "std", "fill"}`` where height / width
  are ``{"multiple": m}`` (dynamic, a multiple of m) or ``{"fixed": n}``, and the input is
  ``(pixel - mean) / std`` in ``channel_order``;
* ``simplepose_outputs``: JSON of the output structure: an int is the index of an ONNX output,
  a list a Python list, ``{"tuple": [...]}`` a tuple (see :func:`flatten_outputs`);
* ``simplepose_checkpoint``: JSON of the source checkpoint's extra metadata (may be ``{}``).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np

from ..errors import CheckpointError, InputError

__all__ = [
    "ONNX_FORMAT_VERSION",
    "REQUIRED_KEYS",
    "OnnxRuntimeModel",
    "decode_metadata",
    "encode_metadata",
    "flatten_outputs",
    "output_names",
    "read_onnx_metadata",
    "unflatten_outputs",
]

LOG = logging.getLogger(__name__)

ONNX_FORMAT_VERSION = "1"
_JSON_KEYS = ("simplepose_spec", "model_kwargs", "simplepose_input", "simplepose_outputs",
              "simplepose_checkpoint")
REQUIRED_KEYS = (
    "simplepose_format",
    "simplepose_spec",
    "simplepose_model",
    "model_kwargs",
    "simplepose_paradigm",
    "simplepose_input",
    "simplepose_outputs",
)


# ----------------------------------------------------------------- output structure
def flatten_outputs(output) -> tuple[list, object]:
    """Flatten a forward output (tensors in nested lists / tuples) depth-first.

    Returns ``(leaves, structure)``: the tensors in order and a JSON-able structure in which
    each leaf is replaced by its index (lists stay lists, a tuple becomes ``{"tuple": [...]}``).
    """
    leaves: list = []

    def walk(node):
        if isinstance(node, (list, tuple)):
            items = [walk(v) for v in node]
            return {"tuple": items} if isinstance(node, tuple) else items
        if not hasattr(node, "shape"):
            raise InputError(f"cannot export a model output of type {type(node).__name__}")
        leaves.append(node)
        return len(leaves) - 1

    return leaves, walk(output)


def unflatten_outputs(leaves, structure):
    """Inverse of :func:`flatten_outputs`: rebuild the nested output from its leaves."""
    if isinstance(structure, int):
        return leaves[structure]
    if isinstance(structure, dict):
        return tuple(unflatten_outputs(leaves, s) for s in structure["tuple"])
    return [unflatten_outputs(leaves, s) for s in structure]


def output_names(structure) -> list[str]:
    """ONNX output names from the nesting path of each leaf: ``output`` for a single tensor,
    ``output_1_0`` for ``out[1][0]``; in leaf order."""
    names: dict[int, str] = {}

    def walk(node, path):
        if isinstance(node, int):
            names[node] = "_".join(["output"] + [str(p) for p in path])
        else:
            for i, child in enumerate(node["tuple"] if isinstance(node, dict) else node):
                walk(child, path + [i])

    walk(structure, [])
    return [names[i] for i in range(len(names))]


def _count_leaves(structure) -> int:
    if isinstance(structure, int):
        return 1
    children = structure["tuple"] if isinstance(structure, dict) else structure
    return sum(_count_leaves(c) for c in children)


# ------------------------------------------------------------------------ metadata
def encode_metadata(meta: dict) -> dict[str, str]:
    """``{key: value}`` -> ``{key: string}`` for ONNX ``metadata_props`` (JSON for non-strings)."""
    return {
        str(k): v if isinstance(v, str) else json.dumps(v, sort_keys=True) for k, v in meta.items()
    }


def decode_metadata(raw: dict[str, str], source: str = "ONNX file") -> dict:
    """Validate and decode simplepose ONNX metadata (strings) into a dict.

    Returns:
        the metadata with JSON entries decoded and ``spec``, the
        :class:`~simplepose.spec.PoseModelSpec`.

    Raises:
        CheckpointError: a required key is missing (all missing keys are named), the format
            version is unknown, a JSON entry does not parse, or the spec is invalid.
    """
    missing = [k for k in REQUIRED_KEYS if k not in raw]
    if missing:
        hint = "" if len(missing) < len(REQUIRED_KEYS) else " (not written by simplepose export)"
        raise CheckpointError(
            f"{source} has no simplepose metadata: missing {', '.join(missing)}{hint}"
        )
    if raw["simplepose_format"] != ONNX_FORMAT_VERSION:
        raise CheckpointError(
            f"{source} has simplepose ONNX format {raw['simplepose_format']!r}; this version "
            f"reads {ONNX_FORMAT_VERSION!r}"
        )
    from ..checkpoint import validate_metadata
    from ..utils.io import loads_json

    meta = dict(raw)
    for key in _JSON_KEYS:
        if key in raw:
            try:
                meta[key] = loads_json(raw[key], f"{source}: metadata {key}")
            except json.JSONDecodeError as exc:
                raise CheckpointError(f"{source}: metadata {key} is not JSON ({exc})") from None
            except ValueError as exc:  # nested too deeply
                raise CheckpointError(str(exc)) from None
    # the same bounds as a checkpoint's (a tampered input size would size every crop)
    validate_metadata({k: v for k, v in meta.items() if k != "simplepose_spec"}, source,
                      meta["simplepose_spec"])
    from ..spec import PoseModelSpec

    try:
        meta["spec"] = PoseModelSpec.from_dict(meta["simplepose_spec"])
    except InputError as exc:
        raise CheckpointError(f"{source}: invalid simplepose_spec metadata ({exc})") from None
    return meta


def _ort_errors() -> tuple[type[BaseException], ...]:
    """What ONNX Runtime raises for a file it cannot load (its own types, not RuntimeError)."""
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    names = ("Fail", "InvalidArgument", "InvalidGraph", "InvalidProtobuf", "NoSuchFile",
             "NotImplemented", "RuntimeException")
    return (RuntimeError, OSError) + tuple(getattr(state, n) for n in names if hasattr(state, n))


def _session(path, providers=None, threads: int | None = None, options=None):
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"ONNX file {path} does not exist")
    so = options or ort.SessionOptions()
    if threads:
        so.intra_op_num_threads = int(threads)
    try:
        return ort.InferenceSession(
            os.fspath(path), sess_options=so, providers=providers or ["CPUExecutionProvider"]
        )
    except _ort_errors() as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CheckpointError(f"{path} is not a loadable ONNX model ({first})") from None


def read_onnx_metadata(path) -> dict:
    """The decoded simplepose metadata of an exported ONNX file (see the module docstring)."""
    import onnx
    from google.protobuf.message import DecodeError

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"ONNX file {path} does not exist")
    try:
        model = onnx.load(os.fspath(path), load_external_data=False)
    except (DecodeError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is not an ONNX file ({exc})") from None
    return decode_metadata({p.key: p.value for p in model.metadata_props}, str(path))


# --------------------------------------------------------------------------- model
class OnnxRuntimeModel:
    """An exported simplepose network run by ONNX Runtime, called like the torch module.

    Args:
        path: ``.onnx`` file written by :mod:`simplepose.export`.
        providers: ONNX Runtime execution providers (default CPU).
        threads: intra-op threads (default: ONNX Runtime's choice, one per core).
        session_options: an ``onnxruntime.SessionOptions`` to start from.

    Attributes:
        meta: the decoded metadata (:func:`decode_metadata`).
        spec: the model's :class:`~simplepose.spec.PoseModelSpec` (from the metadata).
        model_name, model_kwargs, paradigm: the spec's.
        training: always ``False`` (an exported graph is in eval mode).

    Raises:
        CheckpointError: missing or unloadable file, missing / invalid simplepose metadata, or a
            graph whose outputs do not match its recorded structure.
    """

    training = False

    def __init__(self, path, providers=None, threads: int | None = None, session_options=None):
        self.path = Path(path)
        self.session = _session(path, providers, threads, session_options)
        raw = self.session.get_modelmeta().custom_metadata_map
        self.meta = decode_metadata(dict(raw), str(self.path))
        self.spec = self.meta["spec"]
        self.model_name = self.spec.name
        self.model_kwargs = self.spec.kwargs
        self.paradigm = self.spec.paradigm
        self._structure = self.meta["simplepose_outputs"]
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise CheckpointError(f"{self.path}: expected one graph input, found {len(inputs)}")
        self.input_name = inputs[0].name
        self._outputs = [o.name for o in self.session.get_outputs()]
        if _count_leaves(self._structure) != len(self._outputs):
            raise CheckpointError(
                f"{self.path}: metadata describes {_count_leaves(self._structure)} outputs, "
                f"the graph has {len(self._outputs)}"
            )
        spec = self.meta["simplepose_input"]
        self._hw = (spec.get("height", {}), spec.get("width", {}))

    # -- torch.nn.Module look-alikes used by the pipelines
    def eval(self) -> OnnxRuntimeModel:
        return self

    def to(self, device=None, *args, **kwargs) -> OnnxRuntimeModel:
        """Accepts the CPU device (the session's providers decide where it runs)."""
        if device is not None and str(device) != "cpu" and not str(device).startswith("cpu"):
            providers = self.session.get_providers()
            if str(device).startswith("cuda") and "CUDAExecutionProvider" in providers:
                return self
            raise InputError(
                f"the ONNX Runtime session of {self.path.name} runs on {providers}, "
                f"not on device {device!r}"
            )
        return self

    def _check(self, x: np.ndarray) -> None:
        if x.ndim != 4 or x.shape[1] != 3:
            raise InputError(
                f"{self.path.name} expects an NCHW (N, 3, H, W) float32 input, got shape {x.shape}"
            )
        for axis, rule in zip(("height", "width"), self._hw):
            size = x.shape[2 if axis == "height" else 3]
            if "fixed" in rule and size != rule["fixed"]:
                raise InputError(
                    f"{self.path.name} was exported for input {axis} {rule['fixed']}, got {size}"
                )
            if "multiple" in rule and size % rule["multiple"]:
                raise InputError(
                    f"{self.path.name} needs an input {axis} that is a multiple of "
                    f"{rule['multiple']}, got {size}"
                )

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        """The flat list of output arrays for a float32 (N, 3, H, W) input array."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        self._check(x)
        return self.session.run(self._outputs, {self.input_name: x})

    def __call__(self, x):
        """Forward: same nested structure as the torch model; torch in -> torch out."""
        is_torch = not isinstance(x, np.ndarray)
        if is_torch:
            x = x.detach().to("cpu").float().numpy()
        leaves = self.run(x)
        if is_torch:
            import torch

            leaves = [torch.from_numpy(v) for v in leaves]
        return unflatten_outputs(leaves, self._structure)

    def __repr__(self) -> str:
        return (
            f"OnnxRuntimeModel({self.path.name}, model={self.model_name}, "
            f"providers={self.session.get_providers()})"
        )
