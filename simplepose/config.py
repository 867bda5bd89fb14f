"""Typed training configuration: nested dataclasses, YAML files and ``--opts`` overrides.

One :class:`Config` describes a whole training run. It is read from YAML by :func:`load_config`,
may be overridden from the command line with dotted ``key=value`` pairs, is saved as
``config.yaml`` in the run directory and inside every training checkpoint
(:func:`config_to_dict`), so a run can always be rebuilt from its own files.

Schema (defaults in the dataclasses below)::

    seed                      # torch/python/numpy seed of the run (model init)
    model:  name, kwargs      # a registered model spec (simplepose.spec) and its builder kwargs
    data:   task (bottomup | topdown), train_ann, train_images, val_ann, val_images,
            input_size (bottom-up square side), input_hw (top-down [H, W]), codec (top-down
            codec name, e.g. rsn_256x192), augment, workers, batch_size (per process), seed
            (augmentation seed: per-sample RNG = (seed, epoch, index)), image_ids (subset),
            crop (bottom-up: person | image), padding (top-down crop padding [x, y]),
            layout (keypoint layout of the files: coco17 | mpii16 | crowdpose14)
    loss:   name (auto | focal_l2 | cpn | coarse_to_fine), gamma, batch_normalizer,
            scale_weights, stack_weights (focal L2); top_k, global_level_mean (CPN);
            use_ohkm, coarse_weight (MSPN / RSN)
    optim:  name (sgd | adam), lr, lr_scales_with_world_size, momentum, nesterov, betas, eps,
            weight_decay, schedule (simplepose_step | warmup_linear | multistep | constant),
            warmup_epochs, warmup_iters, warmup_factor, step_epochs, step_gamma,
            late_step_epoch, late_step_epochs, milestones, epochs, max_iters
    train:  output_dir, grad_accum_steps, amp (off | bf16 | fp16), sync_bn,
            checkpoint_every_iters, checkpoint_every_epochs, log_every, max_iters_per_epoch,
            skip_loss_above, device, progress, dist_timeout_s

Rules:

* every key anywhere in the YAML must be a field; an unknown key raises :class:`ConfigError`
  naming the full dotted key and listing the valid keys of its section (typo detection).
  ``model.kwargs`` is free-form (the model builder checks it);
* ``--opts`` items are ``dotted.key=value``; the value is parsed with YAML scalar rules
  (``2``, ``0.5``, ``true``, ``[1, 2]``, ``null``). A single-component key that is not a
  top-level field may name a unique leaf anywhere (``output_dir=...`` is
  ``train.output_dir``); an ambiguous one is an error that lists the candidates;
* values are checked against the field types: ``1e-4`` (a string for YAML 1.1) is accepted
  for a float field, ``off`` (a YAML boolean) for ``amp``, ints for floats.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from simplepose.errors import SimplePoseError
from simplepose.utils.io import atomic_write_text

__all__ = [
    "Config",
    "ConfigError",
    "DataConfig",
    "LossConfig",
    "ModelConfig",
    "OptimConfig",
    "TrainConfig",
    "apply_opts",
    "config_from_dict",
    "config_to_dict",
    "load_config",
    "save_config",
    "validate",
    "validate_model",
]

LOG = logging.getLogger(__name__)


class ConfigError(SimplePoseError, ValueError):
    """A config file or override is malformed: unknown key, wrong type or invalid value."""


@dataclass
class ModelConfig:
    """Which network to build: the registered spec ``name`` (:mod:`simplepose.spec`) with
    builder ``kwargs``."""

    name: str = "imhn"
    kwargs: dict = field(default_factory=dict)  # free-form builder keyword arguments


@dataclass
class DataConfig:
    """Datasets and loaders. Paths are relative to the working directory."""

    task: Literal["bottomup", "topdown"] = "bottomup"
    train_ann: str = ""  # COCO person-keypoints json
    train_images: str = ""  # folder of the training images
    val_ann: str = ""
    val_images: str = ""
    input_size: int = 512  # bottom-up: square network input (px), labels at input_size / 4
    input_hw: list[int] = field(default_factory=lambda: [256, 192])  # top-down input [H, W]
    codec: str = ""  # top-down codec name (simplepose.codecs.topdown.CODECS), e.g. rsn_256x192;
    # empty: the model spec's codec family at input_hw
    augment: bool = True
    workers: int = 2  # DataLoader workers per process
    batch_size: int = 4  # per process (per GPU)
    seed: int = 0  # augmentation seed; every sample's RNG is seeded by (seed, epoch, index)
    image_ids: list[int] | None = None  # train on these images only (None: all)
    # bottom-up samples: "person" (SPEC 3.2 crops around each main person) or "image" (the
    # whole image at the inference geometry, no augmentation: memorisation / sanity runs)
    crop: Literal["person", "image"] = "person"
    # top-down crop padding [x, y] around the box (None: the dataset's MSPN training padding)
    padding: list[float] | None = None
    # keypoint layout of the annotation files (simplepose.skeleton.get_layout): the codec's flip
    # permutation and the bottom-up limb graph follow it; the model's output must match it
    layout: str = "coco17"


@dataclass
class LossConfig:
    """Loss options; ``name: auto`` is the model spec's loss (focal_l2, cpn or coarse_to_fine)."""

    name: Literal["auto", "focal_l2", "cpn", "coarse_to_fine"] = "auto"
    # focal L2 (SPEC 3.6)
    gamma: float = 2.0  # 2 = README/paper, 1 = released code
    batch_normalizer: float | None = None  # None = actual per-process batch; 4 = reference
    scale_weights: list[float] | None = None  # None = (0.1, 0.2, 0.4, 1.6, 6.4)[:scales]
    stack_weights: list[float] | None = None  # None = all ones
    # top-down (SPEC 4.4 / 5.4)
    top_k: int = 8  # OHKM keypoints per sample
    global_level_mean: bool = False  # CPN: divide L_G by the number of levels (TF-CPN)
    use_ohkm: bool = True  # MSPN/RSN: OHKM on the finest unit
    coarse_weight: float = 0.25  # MSPN/RSN: weight of units 0..2


@dataclass
class OptimConfig:
    """Optimiser and learning-rate schedule (see :mod:`simplepose.engine.schedule`)."""

    name: Literal["sgd", "adam"] = "sgd"
    lr: float = 2.5e-5  # base LR (per process when lr_scales_with_world_size)
    lr_scales_with_world_size: bool = True  # effective base = lr * world_size
    momentum: float = 0.9  # SGD
    nesterov: bool = False  # SGD
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])  # Adam
    eps: float = 1e-8  # Adam
    weight_decay: float = 5e-4
    schedule: Literal["simplepose_step", "warmup_linear", "multistep", "constant"] = (
        "simplepose_step"
    )
    warmup_epochs: int = 3  # simplepose_step / multistep: per-iteration warm-up epochs (0 = off)
    warmup_iters: int = 2400  # warmup_linear: warm-up iterations (not rescaled by world size)
    warmup_factor: float = 0.1  # warmup_linear: multiplier at iteration 0
    step_epochs: int = 15  # simplepose_step: decay every step_epochs
    step_gamma: float = 0.2  # simplepose_step / multistep: decay factor
    late_step_epoch: int = 78  # simplepose_step: from here on exponent = (epoch - 78) // 5
    late_step_epochs: int = 5
    milestones: list[int] = field(default_factory=list)  # multistep: epochs
    epochs: int = 100
    max_iters: int = 0  # 0 = epochs * iterations per epoch; else stop (and decay to 0) here


@dataclass
class TrainConfig:
    """Training loop, checkpoints and logging."""

    output_dir: str = "runs/default"
    grad_accum_steps: int = 1  # micro-batches per optimiser step
    amp: Literal["off", "bf16", "fp16"] = "off"  # fp16 needs CUDA (GradScaler)
    sync_bn: bool = False  # convert BatchNorm to SyncBatchNorm (CUDA + world > 1 only)
    checkpoint_every_iters: int = 0  # also every N iterations (0 = off)
    checkpoint_every_epochs: int = 1  # also at the end of every N-th epoch (0 = never)
    log_every: int = 20  # iterations between metrics.csv rows
    max_iters_per_epoch: int = 0  # 0 = full epochs; > 0 caps them (smoke runs)
    skip_loss_above: float | None = 2e5  # skip a batch whose loss exceeds this; null = never
    device: Literal["auto", "cpu", "cuda"] = "auto"
    progress: bool = True  # tqdm bar on rank 0
    # torch.distributed collective timeout (s): a stopped or hung rank is reported (by number)
    # and the run ends after this long; torch's own default is 1800 s
    dist_timeout_s: float = 300.0


@dataclass
class Config:
    """A whole training run."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    seed: int = 0


# ------------------------------------------------------------------ type checking
_FREE_FORM = {"model.kwargs"}


def _hints(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _field_names(cls) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def _coerce(value, tp, key: str):
    """Check ``value`` against the annotation ``tp``; return the (converted) value."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):  # Optional[X] / X | None
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], key)
    if origin is Literal:
        if isinstance(value, bool) and not value and "off" in args:
            value = "off"  # YAML 1.1 reads `off` as false
        if value not in args:
            raise ConfigError(f"{key}: {value!r} is not one of {', '.join(map(str, args))}")
        return value
    if origin is list:
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        (item_tp,) = args or (Any,)
        return [_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
    if tp is Any:
        return value
    if tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads 1e-4 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    return value  # pragma: no cover - every field type is handled above


def _is_section(tp) -> bool:
    return dataclasses.is_dataclass(tp)


def config_from_dict(data: dict | None, prefix: str = "", cls=Config):
    """Build ``cls`` from a nested dict, refusing unknown keys (named with their dotted path)."""
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {data!r}")
    hints = _hints(cls)
    names = _field_names(cls)
    unknown = [k for k in data if k not in names]
    if unknown:
        key = f"{prefix}{unknown[0]}"
        section = prefix.rstrip(".") or "the top level"
        raise ConfigError(
            f"unknown config key {key!r}; valid keys in {section}: {', '.join(names)}"
        )
    kwargs = {}
    for name, value in data.items():
        tp = hints[name]
        key = f"{prefix}{name}"
        if _is_section(tp):
            kwargs[name] = config_from_dict(value, f"{key}.", tp)
        else:
            kwargs[name] = _coerce(value, tp, key)
    cfg = cls(**kwargs)
    if cls is Config:
        validate(cfg)
    return cfg


def config_to_dict(cfg) -> dict:
    """Nested dict of plain Python values (safe for YAML, JSON and ``torch.save``)."""
    return dataclasses.asdict(cfg)


def validate(cfg: Config) -> None:
    """Cross-field checks that the types alone cannot express."""
    positive = {
        "data.batch_size": cfg.data.batch_size,
        "data.input_size": cfg.data.input_size,
        "train.grad_accum_steps": cfg.train.grad_accum_steps,
        "train.log_every": cfg.train.log_every,
    }
    for key, value in positive.items():
        if value < 1:
            raise ConfigError(f"{key} must be >= 1, got {value}")
    non_negative = {
        "data.workers": cfg.data.workers,
        "optim.max_iters": cfg.optim.max_iters,
        "optim.epochs": cfg.optim.epochs,
        "train.checkpoint_every_iters": cfg.train.checkpoint_every_iters,
        "train.checkpoint_every_epochs": cfg.train.checkpoint_every_epochs,
        "train.max_iters_per_epoch": cfg.train.max_iters_per_epoch,
        "optim.warmup_epochs": cfg.optim.warmup_epochs,
        "optim.warmup_iters": cfg.optim.warmup_iters,
    }
    for key, value in non_negative.items():
        if value < 0:
            raise ConfigError(f"{key} must be >= 0, got {value}")
    if cfg.optim.lr < 0:
        raise ConfigError(f"optim.lr must be >= 0, got {cfg.optim.lr}")
    if not (math.isfinite(cfg.train.dist_timeout_s) and cfg.train.dist_timeout_s > 0):
        raise ConfigError(f"train.dist_timeout_s must be > 0, got {cfg.train.dist_timeout_s}")
    if len(cfg.data.input_hw) != 2:
        raise ConfigError(f"data.input_hw must be [H, W], got {cfg.data.input_hw}")
    if len(cfg.optim.betas) != 2:
        raise ConfigError(f"optim.betas must be [beta1, beta2], got {cfg.optim.betas}")
    if cfg.optim.epochs == 0 and cfg.optim.max_iters == 0:
        raise ConfigError("set optim.epochs or optim.max_iters (both are 0)")
    validate_model(cfg)


def validate_model(cfg: Config) -> None:
    """Model, task, input size and codec must describe one model spec: the model is registered
    (:mod:`simplepose.spec`), ``data.task`` is its paradigm, a top-down model's
    ``model.kwargs.input_size``, ``data.input_hw`` and ``data.codec`` agree (same size, the
    model's codec family), and a bottom-up ``data.input_size`` is a multiple of the model's
    padding multiple."""
    from simplepose.errors import InputError
    from simplepose.spec import get_spec, resolve_spec

    try:
        spec = get_spec(cfg.model.name)
    except InputError as exc:
        raise ConfigError(f"model.name: {exc}") from None
    if cfg.data.task != spec.paradigm:
        raise ConfigError(
            f"data.task is {cfg.data.task!r} but model {spec.name} is {spec.paradigm}"
        )
    topdown = spec.paradigm == "topdown"
    try:
        hw = cfg.data.input_hw if topdown else None
        spec = resolve_spec(cfg.model.name, cfg.model.kwargs, hw, cfg.data.codec or None)
    except InputError as exc:
        raise ConfigError(f"model / data.input_hw / data.codec disagree: {exc}") from None
    multiple = int(spec.inference.get("pad_multiple", 1))
    if not topdown and cfg.data.input_size % multiple:
        raise ConfigError(f"data.input_size {cfg.data.input_size} must be a multiple of "
                          f"{multiple} for {spec.name}")


# ------------------------------------------------------------------ overrides
def _leaf_paths(cls=Config, prefix: str = "") -> list[str]:
    out = []
    hints = _hints(cls)
    for name in _field_names(cls):
        if _is_section(hints[name]):
            out.extend(_leaf_paths(hints[name], f"{prefix}{name}."))
        else:
            out.append(f"{prefix}{name}")
    return out


def _resolve_key(key: str) -> list[str]:
    """Dotted path of an override key; a bare leaf name may stand for a unique nested field."""
    parts = key.split(".")
    if len(parts) == 1 and key not in _field_names(Config):
        matches = [p for p in _leaf_paths() if p.split(".")[-1] == key]
        if len(matches) == 1:
            return matches[0].split(".")
        if len(matches) > 1:
            raise ConfigError(f"ambiguous config key {key!r}: use one of {', '.join(matches)}")
    return parts


def apply_opts(data: dict, opts: list[str] | None) -> dict:
    """Apply ``key=value`` overrides to a nested dict (in place) and return it.

    Values are parsed with YAML scalar rules. Unknown keys are reported by
    :func:`config_from_dict` afterwards, except that a key under a non-section field (e.g.
    ``seed.x``) is refused here.
    """
    for item in opts or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key:
            raise ConfigError(f"override {item!r} has an empty key")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as exc:
            raise ConfigError(f"override {key}: cannot parse {raw!r} ({exc})") from None
        except RecursionError:
            raise ConfigError(f"override {key}: the value is nested too deeply") from None
        parts = _resolve_key(key)
        node, cls = data, Config
        for depth, part in enumerate(parts[:-1]):
            path = ".".join(parts[: depth + 1])
            if cls is not None:
                hints = _hints(cls)
                if part not in hints:
                    raise ConfigError(
                        f"unknown config key {path!r}; valid keys in "
                        f"{'.'.join(parts[:depth]) or 'the top level'}: "
                        f"{', '.join(_field_names(cls))}"
                    )
                nxt = hints[part]
                if not _is_section(nxt) and path not in _FREE_FORM:
                    raise ConfigError(f"config key {path!r} is a value, not a section")
                cls = nxt if _is_section(nxt) else None
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                raise ConfigError(f"config key {path!r} is not a mapping")
            node = child
        node[parts[-1]] = value
    return data


def load_config(path=None, opts: list[str] | None = None) -> Config:
    """Read a YAML config (or the defaults when ``path`` is None) and apply ``opts``.

    Raises:
        ConfigError: unreadable YAML, unknown key (named with its dotted path and the valid
            keys), wrong type or invalid value.
    """
    data: dict = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc})") from None
        except RecursionError:
            raise ConfigError(f"{path}: nested too deeply to be a config") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the top level must be a mapping")
    data = apply_opts(data, opts)
    try:
        return config_from_dict(data)
    except ConfigError as exc:
        where = f"{path}: " if path is not None else ""
        raise ConfigError(f"{where}{exc}") from None


def dump_config(cfg: Config) -> str:
    """YAML text of ``cfg`` (keys in schema order)."""
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False, default_flow_style=None)


def save_config(cfg: Config, path) -> Path:
    """Write ``cfg`` as YAML to ``path`` atomically; :func:`load_config` reads it back."""
    path = Path(path)
    atomic_write_text(path, dump_config(cfg))
    LOG.info("saved config to %s", path)
    return path
