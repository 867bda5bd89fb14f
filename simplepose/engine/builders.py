"""Training builders: the dataset, codec, loss and optimiser a :class:`~simplepose.config.Config`
asks for (used by :class:`simplepose.engine.loop.Trainer`)."""

from __future__ import annotations

import os

import torch
from torch import nn

from simplepose.config import Config
from simplepose.errors import InputError

__all__ = ["build_codec", "build_loss", "build_optimizer", "build_train_dataset", "loss_name"]


def _require_path(value: str, key: str, kind: str) -> str:
    if not value:
        raise InputError(f"{key} is not set (the {kind} path)")
    if not os.path.exists(value):
        raise InputError(f"{key}: {kind} {value} does not exist")
    return value


def build_codec(cfg: Config):
    from simplepose.codecs.topdown import build_codec

    name = cfg.data.codec or _default_codec_name(cfg)
    return build_codec(name)


def _default_codec_name(cfg: Config) -> str:
    h, w = cfg.data.input_hw
    family = "cpn" if cfg.model.name.startswith("cpn") else (
        "rsn" if cfg.model.name.startswith("rsn") else "mspn")
    return f"{family}_{h}x{w}"


def build_train_dataset(cfg: Config):
    """The training dataset of ``cfg.data`` (checks that the paths exist first).

    Raises:
        InputError: a path is unset or missing (one-line message naming the config key).
    """
    ann = _require_path(cfg.data.train_ann, "data.train_ann", "annotation file")
    images = _require_path(cfg.data.train_images, "data.train_images", "image folder")
    if cfg.data.task == "bottomup":
        from simplepose.data.bottomup_dataset import BottomUpDataset

        return BottomUpDataset(
            ann, images, input_size=cfg.data.input_size, stride=4, augment=cfg.data.augment,
            seed=cfg.data.seed, image_ids=cfg.data.image_ids, crop=cfg.data.crop,
        )
    from simplepose.data.topdown_dataset import TopDownDataset

    extra = {} if cfg.data.padding is None else {"padding": tuple(cfg.data.padding)}
    return TopDownDataset(
        ann, images, build_codec(cfg), augment=cfg.data.augment, seed=cfg.data.seed, image_ids=cfg.data.image_ids, **extra
    )


def loss_name(cfg: Config) -> str:
    if cfg.loss.name != "auto":
        return cfg.loss.name
    if cfg.data.task == "bottomup":
        return "focal_l2"
    return "cpn" if cfg.model.name.startswith("cpn") else "coarse_to_fine"


def build_loss(cfg: Config, model: nn.Module) -> nn.Module:
    """The loss module for ``cfg`` (see the module docstring)."""
    name = loss_name(cfg)
    if name == "focal_l2":
        from simplepose.losses.focal_l2 import SCALE_WEIGHTS, MultiScaleFocalL2Loss

        num_scales = getattr(model, "num_scales", len(SCALE_WEIGHTS))
        scale_weights = cfg.loss.scale_weights or SCALE_WEIGHTS[:num_scales]
        return MultiScaleFocalL2Loss(
            gamma=cfg.loss.gamma,
            scale_weights=scale_weights,
            stack_weights=cfg.loss.stack_weights,
            batch_normalizer=cfg.loss.batch_normalizer,
        )
    from simplepose.losses.topdown import CoarseToFineLoss, CPNLoss

    codec = build_codec(cfg)
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

