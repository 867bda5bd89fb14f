"""One description of each model: :class:`PoseModelSpec` and the one registry of specs.

A spec says everything training, inference, the demo, evaluation and checkpoints need to know
about a model, so none of them keeps its own table:

* ``builder`` (``"module:function"``) and ``kwargs``: how to build the network;
* ``paradigm``: ``"bottomup"`` (whole image -> maps -> grouping) or ``"topdown"`` (person box
  crops -> heatmaps);
* ``keypoints``: the name of the keypoint layout of the people it returns (resolved through
  :mod:`simplepose.skeleton`);
* ``codec``: the codec type and *all* its parameters (``{"type": ..., field: value}``), so a
  checkpoint rebuilds exactly the codec training used;
* ``input``: the input normalisation (:class:`InputNorm`: channel order, mean, std, fill);
* ``output_adapter``: the name of the function that picks the decoded maps from the network's
  forward output (:data:`OUTPUT_ADAPTERS`);
* ``loss``: the loss factory name (``focal_l2``, ``cpn``, ``coarse_to_fine``; see
  :func:`simplepose.engine.builders.build_loss`);
* ``inference``: default inference options (bottom-up: ``box_size``, ``pad_multiple``,
  grouping ``params``; top-down: test ``padding`` and the family's ``reference_padding``);
* ``pretrained``: the builder can load weights bundled with the package (``pretrained=True``);
* ``convert_from``: the released-checkpoint layouts (:data:`simplepose.convert.CONVERTERS`)
  whose weights convert into this model.

A spec is frozen and serialisable (:meth:`PoseModelSpec.to_dict` / :meth:`~PoseModelSpec.from_dict`,
plain JSON values). Checkpoints store it whole (:mod:`simplepose.checkpoint`), so a model
registered only in a user's script (or a test) still loads from its checkpoint alone.

Registry: :func:`register_spec`, :func:`get_spec` (an unknown name is an :class:`InputError`
listing the known ones), :func:`available_specs`. The built-in models are registered at the
bottom of this module (:func:`_register_builtins`); nowhere else lists model names.

An inference backend other than torch replaces only the forward step of the pipelines; the spec
(normalisation, codec, adapter, defaults) is shared. A new dataset layout is a ``keypoints``
value and the codec's ``flip_index``/keypoint count, not a special case.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property

from .errors import InputError

__all__ = [
    "CPN_INPUT",
    "MSPN_INPUT",
    "OUTPUT_ADAPTERS",
    "PARADIGMS",
    "TOPDOWN_TEST_PADDING",
    "InputNorm",
    "PoseModelSpec",
    "available_specs",
    "build_model",
    "codec_from_dict",
    "codec_to_dict",
    "get_spec",
    "keypoint_names",
    "register_spec",
    "registered_specs",
    "resolve_spec",
    "select_heatmap",
    "unregister_spec",
]

LOG = logging.getLogger(__name__)

PARADIGMS = ("bottomup", "topdown")
LOSSES = ("focal_l2", "cpn", "coarse_to_fine")
SPEC_VERSION = 1


# ----------------------------------------------------------------------------- input
@dataclass(frozen=True)
class InputNorm:
    """How an image becomes network input: ``(pixel - mean) / std`` per channel.

    Attributes:
        channel_order: ``"bgr"`` or ``"rgb"``: channel order of the network input (images
            arrive as BGR uint8).
        mean: (3,) 0..255 values in ``channel_order``, subtracted.
        std: (3,) 0..255 values in ``channel_order``, divided by (IMHN: 255, i.e. ``x / 255``;
            OpenPose: 1, raw BGR).
        fill: (3,) BGR 0..255 value of input pixels outside the image (bottom-up padding,
            top-down crop border).
    """

    channel_order: str = "bgr"
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    fill: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def __post_init__(self):
        if self.channel_order not in ("bgr", "rgb"):
            raise InputError(
                f"InputNorm.channel_order must be 'bgr' or 'rgb', got {self.channel_order!r}"
            )
        for name in ("mean", "std", "fill"):
            value = tuple(float(v) for v in getattr(self, name))
            if len(value) != 3:
                raise InputError(
                    f"InputNorm.{name} must have 3 values, got {getattr(self, name)!r}"
                )
            object.__setattr__(self, name, value)
        if not all(s > 0 for s in self.std):
            raise InputError(f"InputNorm.std must be positive, got {self.std}")


# PyTorch CPN: RGB in [0, 1] minus mean RGB (122.7717, 115.9465, 102.9801) / 255, no std;
# the image is padded with the pixel mean before cropping (SPEC 4.1).
CPN_INPUT = InputNorm(
    channel_order="rgb",
    mean=(122.7717, 115.9465, 102.9801),
    std=(255.0, 255.0, 255.0),
    fill=(102.9801, 115.9465, 122.7717),
)
# MSPN / RSN: BGR ToTensor + Normalize(mean (0.406, 0.456, 0.485), std (0.225, 0.224, 0.229))
# (SPEC 5.1), constant-0 warp border.
MSPN_INPUT = InputNorm(
    channel_order="bgr",
    mean=(0.406 * 255, 0.456 * 255, 0.485 * 255),
    std=(0.225 * 255, 0.224 * 255, 0.229 * 255),
    fill=(0.0, 0.0, 0.0),
)


#: Default test-time box extension (f_w, f_h) of every top-down family (HRNet / SimpleBaseline's
#: 1.25). Measured with the top-down oracle (GT boxes, shared val subset, 256x192, clean decode):
#: MSPN AP 0.945 at the MSPN reference (1.09, 1.135), 0.955 at CPN's (1.2, 1.3), 0.965 at
#: (1.25, 1.25). Every loss left is a labelled keypoint outside the crop (occluded hips and
#: legs below a box drawn around the visible upper body): with perfect maps the in-crop
#: keypoints reach OKS > 0.95 for all but one person. 1.25 lies inside MSPN's training
#: extension range (SPEC 5.1), but its effect on trained weights is not measured here.
TOPDOWN_TEST_PADDING = (1.25, 1.25)


# ---------------------------------------------------------------------- output adapters
def _identity_output(output):
    return output


def _last_stack_finest(output):
    """IMHN: ``preds[stack][scale]`` -> last stack, finest scale (SPEC 3.8)."""
    return output[-1][0]


def select_heatmap(output):
    """The heatmap the decoder reads from any top-down model's forward output.

    * CPN: ``(global_outs list, refine_out)`` -> ``refine_out``;
    * MSPN / RSN in eval mode: the final heatmap tensor itself; with ``return_stages``:
      ``(heatmap, stages)`` -> ``heatmap``.

    Returns the (N, K, H_out, W_out) tensor.
    """
    if isinstance(output, (tuple, list)) and len(output) == 2:
        first, second = output
        if isinstance(first, (tuple, list)):  # CPN: (global_outs, refine_out)
            return second
        if isinstance(second, (tuple, list)):  # MSPN/RSN with stages: (heatmap, stages)
            return first
    if hasattr(output, "shape") and len(output.shape) == 4:
        return output
    raise InputError(
        f"cannot find the final heatmap in a model output of type {type(output).__name__}; "
        "pass output_adapter= to TopDownPipeline"
    )


#: output adapter name -> ``forward output -> (N, C, H, W) maps`` in the codec's channel order.
OUTPUT_ADAPTERS: dict[str, Callable] = {
    "identity": _identity_output,
    "last_stack_finest": _last_stack_finest,
    "topdown_heatmap": select_heatmap,
}


# ---------------------------------------------------------------------- keypoint layouts
def keypoint_names(layout: str) -> tuple[str, ...]:
    """The keypoint names of the layout called ``layout``
    (:func:`simplepose.skeleton.get_layout`)."""
    from .skeleton import get_layout

    return tuple(get_layout(layout).keypoints)


def _bottomup_layout(name: str):
    """The :class:`~simplepose.skeleton.BottomUpLayout` called ``name``: a module-level one of
    :mod:`simplepose.skeleton` (``simplepose18``, ``openpose18``) or the SimplePose-style
    layout of a keypoint layout (``simplepose_<layout>``,
    :func:`~simplepose.skeleton.bottomup_layout`)."""
    from . import skeleton

    layouts = {v.name: v for v in vars(skeleton).values() if isinstance(v, skeleton.BottomUpLayout)}
    if name in layouts:
        return layouts[name]
    if name.startswith("simplepose_"):
        return skeleton.bottomup_layout(name[len("simplepose_") :])
    raise InputError(
        f"unknown bottom-up layout {name!r}; known: {sorted(layouts)} or "
        "simplepose_<keypoint layout>"
    )


# ----------------------------------------------------------------------------- codecs
def _codec_types() -> dict[str, type]:
    from .codecs.bottomup import OpenPosePafCodec, SimplePoseCodec
    from .codecs.topdown import TopDownHeatmapCodec

    return {
        "topdown_heatmap": TopDownHeatmapCodec,
        "simplepose": SimplePoseCodec,
        "openpose_paf": OpenPosePafCodec,
    }


def _jsonable(value):
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return value.item()
    return value


def _tupled(value):
    return tuple(_tupled(v) for v in value) if isinstance(value, list) else value


def codec_to_dict(codec) -> dict:
    """``{"type": ..., every field: value}`` of a codec object (JSON values; a bottom-up
    codec's layout by name)."""
    types = _codec_types()
    kind = next((k for k, t in types.items() if type(codec) is t), None)
    if kind is None:
        raise InputError(
            f"cannot describe codec of type {type(codec).__name__}; known: {sorted(types)}"
        )
    out = {"type": kind}
    for f in dataclasses.fields(codec):
        value = getattr(codec, f.name)
        out[f.name] = value.name if f.name == "layout" else _jsonable(value)
    return out


def _upgraded_codec(data: Mapping) -> dict:
    """A codec dict with the fields of older versions renamed to today's (the codec class's
    ``upgrade_fields``, e.g. a top-down codec's single ``shift`` -> ``shift_ratios``); a dict of
    an unknown type is returned as it is (reported where it is built)."""
    data = dict(data)
    cls = _codec_types().get(data.get("type"))
    upgrade = getattr(cls, "upgrade_fields", None)
    return upgrade(data) if upgrade is not None else data


def codec_from_dict(data: Mapping):
    """Inverse of :func:`codec_to_dict` (also reads the fields of older versions, see
    :func:`_upgraded_codec`).

    Raises:
        InputError: unknown codec type, unknown or invalid field.
    """
    types = _codec_types()
    data = _upgraded_codec(data)
    kind = data.pop("type", None)
    if kind not in types:
        raise InputError(f"unknown codec type {kind!r}; known: {sorted(types)}")
    cls = types[kind]
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise InputError(f"codec {kind}: unknown field(s) {unknown}; fields: {sorted(names)}")
    kwargs = {k: _tupled(v) for k, v in data.items()}
    if "layout" in kwargs:
        kwargs["layout"] = _bottomup_layout(kwargs["layout"])
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise InputError(f"codec {kind}: {exc}") from None


# ------------------------------------------------------------------------------- spec
_FIELDS_REQUIRED = ("name", "builder", "paradigm", "codec", "input", "output_adapter", "loss")


@dataclass(frozen=True)
class PoseModelSpec:
    """Everything simplepose knows about one model (see the module docstring).

    Attributes:
        name: registry name (``"imhn"``, ``"rsn18"``, ...).
        builder: ``"module:function"`` building the ``nn.Module`` from keyword arguments.
        paradigm: ``"bottomup"`` or ``"topdown"``.
        codec: ``{"type": "topdown_heatmap" | "simplepose" | "openpose_paf", field: value}``.
        input: the input normalisation.
        output_adapter: a key of :data:`OUTPUT_ADAPTERS`.
        loss: the loss factory: ``"focal_l2"``, ``"cpn"`` or ``"coarse_to_fine"``.
        keypoints: keypoint layout name of the returned people (``"coco17"``).
        kwargs: builder keyword arguments (JSON values).
        inference: default inference options (JSON values, see the module docstring).
        pretrained: the builder loads bundled weights with ``pretrained=True``.
        convert_from: released-checkpoint layouts that convert into this model.
    """

    name: str
    builder: str
    paradigm: str
    codec: dict
    input: InputNorm
    output_adapter: str
    loss: str
    keypoints: str = "coco17"
    kwargs: dict = field(default_factory=dict)
    inference: dict = field(default_factory=dict)
    pretrained: bool = False
    convert_from: tuple[str, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "convert_from", tuple(str(v) for v in self.convert_from))
        for name in ("codec", "kwargs", "inference"):
            value = getattr(self, name)
            if not isinstance(value, Mapping):
                raise InputError(f"spec {self.name!r}: {name} must be a mapping, got {value!r}")
            try:  # plain JSON values only: the spec is stored in checkpoints
                object.__setattr__(
                    self, name, json.loads(json.dumps(_jsonable(value), sort_keys=True))
                )
            except (TypeError, ValueError) as exc:
                raise InputError(
                    f"spec {self.name!r}: {name} is not JSON-serialisable ({exc})"
                ) from None
        # a spec stored by an older version keeps loading, and holds today's codec fields
        object.__setattr__(self, "codec", _upgraded_codec(self.codec))
        if isinstance(self.input, Mapping):
            object.__setattr__(self, "input", InputNorm(**self.input))
        if not isinstance(self.name, str) or not self.name:
            raise InputError(f"spec name must be a non-empty string, got {self.name!r}")
        if not isinstance(self.builder, str) or self.builder.count(":") != 1:
            raise InputError(
                f"spec {self.name!r}: builder must be 'module:function', got {self.builder!r}"
            )
        if self.paradigm not in PARADIGMS:
            raise InputError(
                f"spec {self.name!r}: paradigm must be one of {PARADIGMS}, got {self.paradigm!r}"
            )
        if self.output_adapter not in OUTPUT_ADAPTERS:
            raise InputError(
                f"spec {self.name!r}: unknown output adapter {self.output_adapter!r}; "
                f"known: {sorted(OUTPUT_ADAPTERS)}"
            )
        if self.loss not in LOSSES:
            raise InputError(f"spec {self.name!r}: loss must be one of {LOSSES}, got {self.loss!r}")
        kind = self.codec.get("type")
        expected = (
            ("topdown_heatmap",) if self.paradigm == "topdown" else ("simplepose", "openpose_paf")
        )
        if kind not in expected:
            raise InputError(
                f"spec {self.name!r}: a {self.paradigm} model needs a codec of type "
                f"{' or '.join(expected)}, got {kind!r}"
            )
        num_keypoints = len(keypoint_names(self.keypoints))
        if self.paradigm == "topdown" and len(self.codec.get("flip_index", ())) != num_keypoints:
            raise InputError(
                f"spec {self.name!r}: codec flip_index has {len(self.codec.get('flip_index', ()))} "
                f"entries for the {num_keypoints} keypoints of {self.keypoints}"
            )
        if self.paradigm == "topdown":
            hw = self.kwargs.get("input_size")
            if hw is not None and [int(v) for v in hw] != [int(v) for v in self.codec["input_hw"]]:
                raise InputError(
                    f"spec {self.name!r}: model input_size {list(hw)} and codec "
                    f"{self.codec.get('name')} input {self.codec['input_hw']} disagree"
                )

    # ------------------------------------------------------------------ building
    def build_model(self, **overrides):
        """The network: ``builder(**{**kwargs, **overrides})`` (imports only its module)."""
        module_name, func_name = self.builder.split(":")
        try:
            builder = getattr(importlib.import_module(module_name), func_name)
        except (ImportError, AttributeError) as exc:
            raise InputError(
                f"spec {self.name!r}: cannot import builder {self.builder!r} ({exc})"
            ) from None
        return builder(**{**self.kwargs, **overrides})

    @cached_property
    def codec_object(self):
        """The codec built from :attr:`codec` (cached)."""
        return codec_from_dict(self.codec)

    def build_codec(self):
        """The codec (:attr:`codec_object`)."""
        return self.codec_object

    def select_output(self, output):
        """The maps the codec decodes, from the network's forward output."""
        return OUTPUT_ADAPTERS[self.output_adapter](output)

    @property
    def layout(self):
        """The :class:`~simplepose.skeleton.KeypointLayout` of the returned people."""
        from .skeleton import get_layout

        return get_layout(self.keypoints)

    @property
    def input_hw(self) -> tuple[int, int] | None:
        """Top-down: the crop size (H_in, W_in) in input px; bottom-up: None (any size)."""
        if self.paradigm != "topdown":
            return None
        h, w = self.codec["input_hw"]
        return int(h), int(w)

    @property
    def codec_family(self) -> str:
        """Top-down codec family (``cpn``, ``mspn``, ``rsn``) or the bottom-up codec type."""
        if self.paradigm == "topdown":
            return str(self.codec["name"]).split("_", 1)[0]
        return self.codec["type"]

    # ------------------------------------------------------------------ variants
    def replace(self, **changes) -> PoseModelSpec:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def with_kwargs(self, **kwargs) -> PoseModelSpec:
        """A copy whose builder kwargs are updated with ``kwargs``; a top-down ``input_size``
        also sets the codec's input size (see :meth:`with_input_hw`)."""
        merged = {**self.kwargs, **kwargs}
        hw = kwargs.get("input_size")
        codec = self.codec
        if self.paradigm == "topdown" and hw is not None:
            codec = self._codec_at(hw)
        return self.replace(kwargs=merged, codec=codec)

    def with_input_hw(self, input_hw) -> PoseModelSpec:
        """Top-down: the same model and codec family at crop size ``(H, W)``: the codec's
        kernels follow :func:`simplepose.codecs.topdown.build_codec`, its other fields keep
        their values, and the builder gets ``input_size=[H, W]``."""
        if self.paradigm != "topdown":
            raise InputError(f"{self.name} is a bottom-up model: it has no fixed input size")
        hw = [int(v) for v in input_hw]
        return self.replace(codec=self._codec_at(hw), kwargs={**self.kwargs, "input_size": hw})

    def _codec_at(self, input_hw) -> dict:
        from .codecs.topdown import build_codec

        hw = tuple(int(v) for v in input_hw)
        if len(hw) != 2:
            raise InputError(f"{self.name}: input size must be (H, W), got {list(input_hw)}")
        if hw == self.input_hw:
            return self.codec
        fresh = codec_to_dict(build_codec(f"{self.codec_family}_{hw[0]}x{hw[1]}"))
        derived = ("name", "input_hw", "heatmap_hw", "kernels", "decode_kernel")
        return {**self.codec, **{k: fresh[k] for k in derived}}

    def with_layout(self, layout) -> PoseModelSpec:
        """The same model for another keypoint layout
        (a :class:`~simplepose.skeleton.KeypointLayout` or its name): ``keypoints`` names it;
        a top-down codec gets its flip permutation (and its benchmark's decoder blur,
        :func:`~simplepose.codecs.topdown.layout_codec_fields`) and the builder
        ``num_keypoints=K``; a SimplePose codec gets the layout's limb graph
        (:func:`~simplepose.skeleton.bottomup_layout`) and the builder ``out_dim`` = its channel
        count.

        Raises:
            InputError: an unknown layout, a codec that cannot follow another layout (OpenPose's
                PAF layout is COCO's), or builder kwargs that already fix another output size.
        """
        from .skeleton import bottomup_layout, get_layout

        layout = get_layout(layout)
        if layout.name == self.keypoints:
            return self
        if self.paradigm == "topdown":
            from .codecs.topdown import layout_codec_fields

            codec = {**self.codec, **layout_codec_fields(layout, self.codec_family)}
            key, value = "num_keypoints", layout.num_keypoints
        elif self.codec["type"] == "simplepose":
            bu = bottomup_layout(layout)
            codec = {**self.codec, "layout": bu.name}
            key, value = "out_dim", bu.extra["num_channels"]
        else:
            raise InputError(f"model {self.name}: its {self.codec['type']} codec has COCO's layout "
                             f"only, not {layout.name}")
        given = self.kwargs.get(key)
        default = _REGISTRY[self.name].kwargs.get(key) if self.name in _REGISTRY else None
        if given is not None and given not in (value, default):
            raise InputError(f"model {self.name}: {key}={given} in the model kwargs, but the "
                             f"{layout.name} layout needs {value}")
        return self.replace(keypoints=layout.name, codec=codec, kwargs={**self.kwargs, key: value})

    def with_codec(self, codec) -> PoseModelSpec:
        """A copy with another codec (an object or its :func:`codec_to_dict`)."""
        data = dict(codec) if isinstance(codec, Mapping) else codec_to_dict(codec)
        return self.replace(codec=data)

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict:
        """Plain JSON values (stored in checkpoints)."""
        out = {"spec_version": SPEC_VERSION}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = dataclasses.asdict(value) if isinstance(value, InputNorm) else value
        return json.loads(json.dumps(_jsonable(out)))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping) -> PoseModelSpec:
        """Inverse of :meth:`to_dict`.

        Raises:
            InputError: not a mapping, missing or unknown fields, invalid values.
        """
        if not isinstance(data, Mapping):
            raise InputError(f"a model spec must be a mapping, got {type(data).__name__}")
        data = dict(data)
        version = data.pop("spec_version", SPEC_VERSION)
        if version != SPEC_VERSION:
            raise InputError(
                f"model spec version {version!r}; this simplepose reads {SPEC_VERSION}"
            )
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(names))
        missing = [k for k in _FIELDS_REQUIRED if k not in data]
        if unknown or missing:
            raise InputError(
                f"model spec {data.get('name')!r}: unknown fields {unknown}, "
                f"missing fields {missing}"
            )
        if not isinstance(data["input"], Mapping):
            raise InputError(f"model spec {data.get('name')!r}: input must be a mapping")
        try:
            data["input"] = InputNorm(**data["input"])
        except TypeError as exc:
            raise InputError(f"model spec {data.get('name')!r}: input: {exc}") from None
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> PoseModelSpec:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"model spec is not JSON ({exc})") from None
        return cls.from_dict(data)


# --------------------------------------------------------------------------- registry
_REGISTRY: dict[str, PoseModelSpec] = {}
_BUILTINS_LOADED = False


def register_spec(spec: PoseModelSpec, replace: bool = False) -> PoseModelSpec:
    """Add ``spec`` to the registry under ``spec.name`` (an existing name needs ``replace``)."""
    _ensure_builtins()
    if not isinstance(spec, PoseModelSpec):
        raise InputError(f"register_spec needs a PoseModelSpec, got {type(spec).__name__}")
    if spec.name in _REGISTRY and not replace:
        raise InputError(f"model spec {spec.name!r} is already registered (pass replace=True)")
    _REGISTRY[spec.name] = spec
    return spec


def unregister_spec(name: str) -> None:
    """Remove ``name`` from the registry (tests that register their own model)."""
    _ensure_builtins()
    _REGISTRY.pop(name, None)


def get_spec(name: str) -> PoseModelSpec:
    """The registered spec of ``name``.

    Raises:
        InputError: ``name`` is not registered (the message lists the known names).
    """
    _ensure_builtins()
    spec = _REGISTRY.get(name)
    if spec is None:
        raise InputError(f"unknown model {name!r}; known: {', '.join(available_specs())}")
    return spec


def available_specs() -> list[str]:
    """Sorted names of the registered models."""
    _ensure_builtins()
    return sorted(_REGISTRY)


def registered_specs() -> list[PoseModelSpec]:
    """The registered specs in registration order (the built-ins first)."""
    _ensure_builtins()
    return list(_REGISTRY.values())


def build_model(name: str, **overrides):
    """Build the model registered as ``name`` with keyword ``overrides`` of its spec's kwargs.

    Raises:
        InputError: ``name`` is not registered (the message lists the known names).
    """
    return get_spec(name).build_model(**overrides)


def resolve_spec(name: str, kwargs: Mapping | None = None, input_hw=None, codec=None,
                 layout=None) -> PoseModelSpec:
    """The spec a training config asks for: ``get_spec(name)`` with builder ``kwargs``; top-down
    at crop size ``input_hw`` (H, W) and, when given, with the codec called ``codec``
    (:func:`simplepose.codecs.topdown.build_codec`); for the keypoint ``layout`` of the data
    (default: the spec's own, :meth:`PoseModelSpec.with_layout`).

    Raises:
        InputError: unknown model; a codec of another family or size than the model's.
    """
    spec = get_spec(name)
    kwargs = dict(kwargs or {})
    if spec.paradigm == "topdown":
        hw = kwargs.get("input_size") or input_hw
        if (
            input_hw is not None
            and hw is not None
            and [int(v) for v in hw] != [int(v) for v in input_hw]
        ):
            raise InputError(
                f"model {name}: model.kwargs.input_size {list(hw)} and input size "
                f"{list(input_hw)} disagree"
            )
        spec = spec.with_kwargs(**kwargs)
        if hw is not None and "input_size" not in kwargs:
            spec = spec.with_input_hw(hw)
        if codec:
            from .codecs.topdown import build_codec

            obj = build_codec(codec)
            family = obj.name.split("_", 1)[0]
            if family != spec.codec_family:
                raise InputError(
                    f"codec {codec} is a {family} codec; model {name} uses "
                    f"{spec.codec_family} codecs"
                )
            if tuple(obj.input_hw) != spec.input_hw:
                raise InputError(
                    f"codec {codec} is for input {list(obj.input_hw)}, the model's "
                    f"input is {list(spec.input_hw)}"
                )
            spec = spec.with_codec(obj)
        return spec.with_layout(layout) if layout else spec
    if codec:
        raise InputError(f"model {name} is bottom-up: a top-down codec ({codec}) does not apply")
    spec = spec.with_kwargs(**kwargs)
    return spec.with_layout(layout) if layout else spec


def _ensure_builtins() -> None:
    global _BUILTINS_LOADED
    if not _BUILTINS_LOADED:
        _BUILTINS_LOADED = True
        _register_builtins()


def _register_builtins() -> None:
    """The models simplepose ships (the only list of model names)."""
    from .codecs.bottomup import OpenPosePafCodec, SimplePoseCodec
    from .codecs.topdown import build_codec
    from .data.topdown_transforms import CPN_TEST_PADDING, MSPN_TEST_PADDING
    from .decode.params import GroupingParams

    def add(**fields):
        spec = PoseModelSpec(**fields)
        _REGISTRY[spec.name] = spec

    # ---- bottom-up: IMHN (SPEC 3): BGR / 255, padded with 128 to multiples of 64.
    add(
        name="imhn",
        builder="simplepose.models.imhn:build_imhn",
        paradigm="bottomup",
        convert_from=("simplepose",),
        codec=codec_to_dict(SimplePoseCodec()),
        input=InputNorm("bgr", (0.0, 0.0, 0.0), (255.0, 255.0, 255.0), (128.0, 128.0, 128.0)),
        output_adapter="last_stack_finest",
        loss="focal_l2",
        inference={"box_size": 512, "pad_multiple": 64, "params": GroupingParams().to_dict()},
    )
    # OpenPose mobilenet_thin (bundled weights): raw BGR, zero padding to multiples of 8.
    # Grouping tuned on the shared val subset with bench/tune_openpose.py (AP 0.299 -> 0.364;
    # 0.320 at input 368; then 0.364 -> 0.366 with limb length outliers removed, cross-person
    # limbs 19 -> 14, persons mixing two people 14 -> 8). Priors: median length of each
    # OpenPose-18 limb over the subset's labelled people, relative to the median limb,
    # left/right averaged (bench/tune_openpose.py --fit-priors).
    openpose_params = GroupingParams(
        peak_threshold=0.03,
        limb_sample_threshold=0.01,
        limb_pass_ratio=0.6,
        min_parts=4,
        min_mean_score=0.4,
        limb_length_outlier=2.25,
        limb_length_priors=(0.75, 0.75, 1.3, 0.95, 1.3, 0.95, 2.36, 1.58, 1.7, 2.36, 1.58, 1.7,
                            0.95, 0.28, 0.39, 0.28, 0.39, 1.0, 1.0),
    )
    add(
        name="openpose_mobilenet_thin",
        builder="simplepose.models.openpose:build_openpose_mobilenet_thin",
        paradigm="bottomup",
        codec=codec_to_dict(OpenPosePafCodec()),
        input=InputNorm(),
        output_adapter="identity",
        loss="focal_l2",
        pretrained=True,
        inference={"box_size": 432, "pad_multiple": 8, "params": openpose_params.to_dict()},
    )

    # ---- top-down (SPEC 4-6) at 256x192; other sizes via PoseModelSpec.with_input_hw.
    # Test padding: TOPDOWN_TEST_PADDING for every family; ``padding="reference"`` selects the
    # family's reference extension.
    for name, builder, family, norm, loss, ref_pad, source in (
        (
            "cpn50",
            "simplepose.models.cpn:build_cpn50",
            "cpn",
            CPN_INPUT,
            "cpn",
            CPN_TEST_PADDING,
            "pytorch-cpn",
        ),
        (
            "cpn101",
            "simplepose.models.cpn:build_cpn101",
            "cpn",
            CPN_INPUT,
            "cpn",
            CPN_TEST_PADDING,
            "pytorch-cpn",
        ),
        (
            "mspn",
            "simplepose.models.mspn:build_mspn",
            "mspn",
            MSPN_INPUT,
            "coarse_to_fine",
            MSPN_TEST_PADDING,
            "mspn",
        ),
        (
            "rsn18",
            "simplepose.models.rsn:build_rsn18",
            "rsn",
            MSPN_INPUT,
            "coarse_to_fine",
            MSPN_TEST_PADDING,
            "rsn",
        ),
        (
            "rsn50",
            "simplepose.models.rsn:build_rsn50",
            "rsn",
            MSPN_INPUT,
            "coarse_to_fine",
            MSPN_TEST_PADDING,
            "rsn",
        ),
    ):
        add(
            name=name,
            builder=builder,
            paradigm="topdown",
            convert_from=(source,),
            codec=codec_to_dict(build_codec(f"{family}_256x192")),
            input=norm,
            output_adapter="topdown_heatmap",
            loss=loss,
            inference={"padding": list(TOPDOWN_TEST_PADDING), "reference_padding": list(ref_pad)},
        )
