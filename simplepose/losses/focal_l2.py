"""Multi-scale focal L2 loss of SimplePose (SPEC 3.6; IBP ``models/loss_model.py MultiTaskLoss``).

Shape legend: S = stacks, B = batch, C = channels (50), H x W = label size (128 x 128 at 512 input,
stride 4), h_j x w_j = prediction size at scale j.

For every scale j (all stacks at once):

* ``Y_j = adaptive_avg_pool2d(Y, (h_j, w_j))``: block mean of the 128^2 labels;
* ``M_j = interpolate(M, (h_j, w_j), bilinear, align_corners=False)`` with ``M_j[M_j < 0.5] = 0``
  (values >= 0.5 stay fractional weights);
* per-channel weights ``W = M_j * w_c`` with ``w_c = 3`` on the keypoint channels 30-47, ``0.1`` on
  the person mask channel 48, 1 elsewhere;
* focal factor ``f = |1 - p_t| ** gamma``, ``p_t = p`` where ``Y_j >= 0.01`` else ``1 - p``, i.e.
  positives are weighted by ``|1 - p|**gamma`` and negatives by ``|p|**gamma``;
* ``L_s = sum_{b,c,y,x} (p - Y_j)^2 * f * W`` per stack (a pixel **sum**, not a mean);
* ``L^j = sum_s w_s L_s / sum_s w_s``.

Total: ``L = sum_j lambda_j L^j / sum_j lambda_j / N`` with ``lambda = [0.1, 0.2, 0.4, 1.6, 6.4]``
(coarse scales weigh more because the loss is a pixel sum) and the batch normaliser ``N``.

Choices (SPEC 3.11 quirks):

* ``gamma``: the released code computes ``abs(1 - p_t)``, i.e. gamma = 1; the README and paper say
  gamma = 2. Default 2 here; pass ``gamma=1`` for bit-level parity with the released training code.
* ``N``: the reference divides by the fixed per-GPU batch ``opt.batch_size`` (4), even for a smaller
  last batch. Default here (``batch_normalizer=None``) is the **actual** batch size B of the call,
  so the loss is a per-image sum that does not depend on how the batch is split; pass
  ``batch_normalizer=4`` to reproduce the reference exactly (with 4-image batches both agree).

The loss is always computed in float32 (autocast is disabled inside, inputs are upcast), so it can
be called on bf16/fp16 predictions from an autocast forward pass.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from simplepose.errors import InputError

__all__ = ["SCALE_WEIGHTS", "MultiScaleFocalL2Loss", "focal_l2_per_stack"]

LOG = logging.getLogger(__name__)

#: lambda_j for scales 128^2, 64^2, 32^2, 16^2, 8^2 (IBP ``config.TrainingOpt.scale_weight``).
SCALE_WEIGHTS = (0.1, 0.2, 0.4, 1.6, 6.4)


def focal_l2_per_stack(
    pred: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor,
    gamma: float = 2.0,
    positive_threshold: float = 0.01,
) -> torch.Tensor:
    """Focal L2 summed over everything but the stack dimension.

    Args:
        pred: (S, B, C, h, w) predictions p.
        target: (B, C, h, w) targets t, broadcast over stacks.
        weight: (B, C, h, w) or broadcastable per-element weights W (mask x channel weight).
        gamma: focal exponent; ``f = |1 - p_t| ** gamma``.
        positive_threshold: ``t >= positive_threshold`` counts as positive (``p_t = p``).

    Returns:
        (S,) tensor, ``sum_{b,c,y,x} (p - t)^2 * f * W`` per stack.
    """
    p_t = torch.where(target >= positive_threshold, pred, 1.0 - pred)
    factor = (1.0 - p_t).abs()
    if gamma != 1.0:
        factor = factor.pow(gamma)
    return ((pred - target).square() * factor * weight).sum(dim=(1, 2, 3, 4))


class MultiScaleFocalL2Loss(nn.Module):
    """SimplePose multi-scale, multi-stack focal L2 loss (module docstring has the formula).

    Args:
        gamma: focal exponent (2 = README/paper; 1 = the released code's ``abs(1 - p_t)``).
        scale_weights: lambda_j per scale, finest first. Its length fixes the number of scales.
        stack_weights: w_s per stack, or None for all ones (any number of stacks).
        keypoint_channels: (start, stop) slice of the keypoint heatmap channels, weighted by
            ``keypoint_weight``.
        keypoint_weight: 3 (``keypoint_task_weight``).
        person_mask_channel: channel of the person mask (48), weighted by ``person_mask_weight``;
            None to disable.
        person_mask_weight: 0.1 (``multi_task_weight``).
        positive_threshold: targets >= this are positives in the focal term (0.01).
        mask_threshold: resized ``mask_miss`` values below this are set to 0 (0.5).
        batch_normalizer: None = divide by the actual batch size B; a number = divide by it
            (4 reproduces the reference's per-GPU batch).
    """

    def __init__(
        self,
        *,
        gamma: float = 2.0,
        scale_weights: Sequence[float] = SCALE_WEIGHTS,
        stack_weights: Sequence[float] | None = None,
        keypoint_channels: tuple[int, int] = (30, 48),
        keypoint_weight: float = 3.0,
        person_mask_channel: int | None = 48,
        person_mask_weight: float = 0.1,
        positive_threshold: float = 0.01,
        mask_threshold: float = 0.5,
        batch_normalizer: float | None = None,
    ):
        super().__init__()
        if gamma < 0:
            raise InputError(f"focal gamma must be >= 0, got {gamma}")
        if not scale_weights or sum(scale_weights) <= 0:
            raise InputError(
                f"scale_weights must be non-empty with a positive sum, got {scale_weights}"
            )
        if stack_weights is not None and sum(stack_weights) <= 0:
            raise InputError(f"stack_weights must have a positive sum, got {stack_weights}")
        if batch_normalizer is not None and batch_normalizer <= 0:
            raise InputError(f"batch_normalizer must be positive or None, got {batch_normalizer}")
        self.gamma = float(gamma)
        self.scale_weights = tuple(float(w) for w in scale_weights)
        self.stack_weights = (
            None if stack_weights is None else tuple(float(w) for w in stack_weights)
        )
        self.keypoint_channels = tuple(keypoint_channels)
        self.keypoint_weight = float(keypoint_weight)
        self.person_mask_channel = person_mask_channel
        self.person_mask_weight = float(person_mask_weight)
        self.positive_threshold = float(positive_threshold)
        self.mask_threshold = float(mask_threshold)
        self.batch_normalizer = batch_normalizer

    def extra_repr(self) -> str:
        norm = "batch" if self.batch_normalizer is None else self.batch_normalizer
        return (
            f"gamma={self.gamma}, scale_weights={self.scale_weights}, "
            f"stack_weights={self.stack_weights}, keypoint_weight={self.keypoint_weight}, "
            f"person_mask_weight={self.person_mask_weight}, batch_normalizer={norm}"
        )

    def channel_weights(self, num_channels: int, device=None) -> torch.Tensor:
        """(C,) float32 w_c: 1; keypoints x ``keypoint_weight``; person mask x its weight."""
        w = torch.ones(num_channels, dtype=torch.float32, device=device)
        start, stop = self.keypoint_channels
        w[start:stop] *= self.keypoint_weight
        if self.person_mask_channel is not None:
            w[self.person_mask_channel] *= self.person_mask_weight
        return w

    def _check(self, preds, target, mask_miss) -> None:
        if not preds or not all(isinstance(s, (list, tuple)) for s in preds):
            raise InputError("preds must be a non-empty list (stacks) of lists (scales) of tensors")
        n_scales = len(self.scale_weights)
        if any(len(s) != n_scales for s in preds):
            raise InputError(
                f"every stack must have {n_scales} scales (len(scale_weights)), "
                f"got {[len(s) for s in preds]}"
            )
        if self.stack_weights is not None and len(self.stack_weights) != len(preds):
            raise InputError(f"{len(preds)} stacks but {len(self.stack_weights)} stack_weights")
        if target.dim() != 4:
            raise InputError(f"target must be (B, C, H, W), got {tuple(target.shape)}")
        b, c = target.shape[:2]
        if mask_miss.dim() != 4 or mask_miss.shape[0] != b or mask_miss.shape[1] != 1:
            raise InputError(f"mask_miss must be ({b}, 1, H, W), got {tuple(mask_miss.shape)}")
        for s, stack in enumerate(preds):
            for j, p in enumerate(stack):
                if p.dim() != 4 or p.shape[0] != b or p.shape[1] != c:
                    raise InputError(
                        f"preds[{s}][{j}] must be ({b}, {c}, h, w), got {tuple(p.shape)}"
                    )
                if p.shape[2:] != preds[0][j].shape[2:]:
                    raise InputError(
                        f"preds[{s}][{j}] size {tuple(p.shape[2:])} differs from stack 0's "
                        f"{tuple(preds[0][j].shape[2:])}"
                    )
        start, stop = self.keypoint_channels
        if not 0 <= start <= stop <= c or (
            self.person_mask_channel is not None and not 0 <= self.person_mask_channel < c
        ):
            raise InputError(
                f"keypoint_channels {self.keypoint_channels} / person_mask_channel "
                f"{self.person_mask_channel} do not fit {c} channels"
            )

    def forward(
        self,
        preds: Sequence[Sequence[torch.Tensor]],
        target: torch.Tensor,
        mask_miss: torch.Tensor,
        return_per_scale: bool = False,
    ):
        """Compute the loss.

        Args:
            preds: ``preds[s][j]`` = (B, C, h_j, w_j) predictions of stack s at scale j (the IMHN
                output), any float dtype.
            target: (B, C, H, W) labels in [0, 1] at the finest label resolution (128^2).
            mask_miss: (B, 1, H, W) in [0, 1]; 0 where people are unlabelled (not supervised).
            return_per_scale: also return the (num_scales,) tensor of L^j / N (before lambda_j).

        Returns:
            0-d float32 loss (and the per-scale tensor when ``return_per_scale``).
        """
        self._check(preds, target, mask_miss)
        device = target.device
        with torch.autocast(device_type=device.type, enabled=False):
            target = target.float()
            mask_miss = mask_miss.float()
            batch = target.shape[0]
            n_stacks = len(preds)
            cw = self.channel_weights(target.shape[1], device)[None, :, None, None]  # (1, C, 1, 1)
            sw = torch.tensor(
                self.stack_weights or [1.0] * n_stacks, dtype=torch.float32, device=device
            )
            per_scale = []
            for j in range(len(self.scale_weights)):
                pred = torch.stack([stack[j].float() for stack in preds])  # (S, B, C, h, w)
                size = pred.shape[-2:]
                tgt = F.adaptive_avg_pool2d(target, size)
                mask = F.interpolate(mask_miss, size=size, mode="bilinear", align_corners=False)
                mask = torch.where(mask < self.mask_threshold, torch.zeros_like(mask), mask)
                per_stack = focal_l2_per_stack(
                    pred, tgt, mask * cw, self.gamma, self.positive_threshold
                )
                per_scale.append((per_stack * sw).sum() / sw.sum())
            per_scale = torch.stack(per_scale)
            lam = torch.tensor(self.scale_weights, dtype=torch.float32, device=device)
            norm = float(batch if self.batch_normalizer is None else self.batch_normalizer)
            loss = (per_scale * lam).sum() / lam.sum() / norm
        if return_per_scale:
            return loss, per_scale / norm
        return loss
