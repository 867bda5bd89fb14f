"""Training builders: the model spec, dataset, loss and optimiser a
:class:`~simplepose.config.Config` asks for (used by :class:`simplepose.engine.loop.Trainer`).
Everything model-specific comes from the :class:`~simplepose.spec.PoseModelSpec`."""

from __future__ import annotations

import os

import torch
from torch import nn

from simplepose.config import Config
from simplepose.errors import InputError
from simplepose.spec import PoseModelSpec, resolve_spec

__all__ = ["build_loss", "build_optimizer", "build_spec", "build_train_dataset", "loss_name"]


def _require_path(value: str, key: str, kind: str) -> str:
    if not value:
        raise InputError(f"{key} is not set (the {kind} path)")
    if not os.path.exists(value):
        raise InputError(f"{key}: {kind} {value} does not exist")
    return value


def build_spec(cfg: Config) -> PoseModelSpec:
    """The model spec ``cfg`` trains: the registered spec of ``model.name`` with
    ``model.kwargs``, top-down at ``data.input_hw`` with ``data.codec`` when set, for the
    keypoint layout ``data.layout`` (:func:`simplepose.spec.resolve_spec`).

    Raises:
        InputError: unknown model or layout, or a codec / input size / output size that
            disagrees with the model.
    """
    td = cfg.data.task == "topdown"
    from simplepose.skeleton import get_layout

    try:
        layout = get_layout(cfg.data.layout)
    except InputError as exc:
        raise InputError(f"data.layout: {exc}") from None
    return resolve_spec(cfg.model.name, cfg.model.kwargs, input_hw=cfg.data.input_hw if td else None,
                        codec=cfg.data.codec or None, layout=layout)  # fmt: skip


def build_train_dataset(cfg: Config, spec: PoseModelSpec | None = None):
    """The training dataset of ``cfg.data`` for the model ``spec`` (default
    :func:`build_spec`); checks that the paths exist first.

    Top-down samples are normalised with the spec's input normalisation, so training and
    inference see the same input.

    Raises:
        InputError: a path is unset or missing (one-line message naming the config key).
    """
    spec = spec or build_spec(cfg)
    ann = _require_path(cfg.data.train_ann, "data.train_ann", "annotation file")
    images = _require_path(cfg.data.train_images, "data.train_images", "image folder")
    if spec.paradigm == "bottomup":
        from simplepose.data.bottomup_dataset import BottomUpDataset

        codec = spec.build_codec()
        return BottomUpDataset(
            ann, images, input_size=cfg.data.input_size, stride=codec.stride,
            augment=cfg.data.augment, seed=cfg.data.seed, image_ids=cfg.data.image_ids,
            crop=cfg.data.crop, codec=codec,
        )
    from simplepose.data.topdown_dataset import TopDownDataset

    extra = {} if cfg.data.padding is None else {"padding": tuple(cfg.data.padding)}
    norm = spec.input
    return TopDownDataset(
        ann, images, spec.build_codec(), augment=cfg.data.augment, seed=cfg.data.seed,
        image_ids=cfg.data.image_ids, pixel_mean=tuple(m / 255.0 for m in norm.mean),
        pixel_std=tuple(v / 255.0 for v in norm.std), to_rgb=norm.channel_order == "rgb", **extra,
    )


def loss_name(cfg: Config, spec: PoseModelSpec) -> str:
    """``loss.name``, or the spec's loss factory when it is ``auto``."""
    return spec.loss if cfg.loss.name == "auto" else cfg.loss.name


def build_loss(cfg: Config, model: nn.Module, spec: PoseModelSpec | None = None) -> nn.Module:
    """The loss module of ``spec``'s loss factory (or ``loss.name``) with the ``loss`` options;
    the top-down losses take their target indices from the spec's codec."""
    spec = spec or build_spec(cfg)
    name = loss_name(cfg, spec)
    if name == "focal_l2":
        from simplepose.losses.focal_l2 import SCALE_WEIGHTS, MultiScaleFocalL2Loss

        num_scales = getattr(model, "num_scales", len(SCALE_WEIGHTS))
        scale_weights = cfg.loss.scale_weights or SCALE_WEIGHTS[:num_scales]
        extra = spec.build_codec().layout.extra  # the layout's channel ranges (SPEC 3.1)
        channels = {k: extra[k] for k in ("keypoint_channels", "person_mask_channel") if k in extra}
        return MultiScaleFocalL2Loss(
            gamma=cfg.loss.gamma,
            scale_weights=scale_weights,
            stack_weights=cfg.loss.stack_weights,
            batch_normalizer=cfg.loss.batch_normalizer,
            **channels,
        )
    from simplepose.losses.topdown import CoarseToFineLoss, CPNLoss

    codec = spec.build_codec()
    if name == "cpn":
        return CPNLoss.from_codec(
            codec, top_k=cfg.loss.top_k, global_level_mean=cfg.loss.global_level_mean
        )
    return CoarseToFineLoss.from_codec(
        codec, top_k=cfg.loss.top_k, use_ohkm=cfg.loss.use_ohkm,
        coarse_weight=cfg.loss.coarse_weight,
    )


def build_optimizer(cfg: Config, model: nn.Module, base_lr: float) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    o = cfg.optim
    if o.name == "sgd":
        return torch.optim.SGD(
            params, lr=base_lr, momentum=o.momentum, weight_decay=o.weight_decay,
            nesterov=o.nesterov,
        )
    return torch.optim.Adam(
        params, lr=base_lr, betas=tuple(o.betas), eps=o.eps, weight_decay=o.weight_decay
    )

