"""Top-down heatmap losses: CPN GlobalNet + RefineNet-OHKM (SPEC 4.4) and the MSPN/RSN
coarse-to-fine loss (SPEC 5.4).

Shape legend: B = batch, K = keypoints, T = number of target kernels, H x W = heatmap size.
Targets and weights are what :class:`simplepose.codecs.topdown.TopDownHeatmapCodec` encodes:
``targets`` (B, T, K, H, W) with peaks at 255 and ``weights`` (B, K) holding the COCO
visibility flag (0 unlabelled, 1 occluded, 2 visible). The losses keep the references'
scale (targets in [0, 255]): the learning rates of SPEC 4.5 / 5.5 were tuned for it.

CPN (GengDavid/pytorch-cpn ``train.py``):

* ``L_G = sum_l mean_{B,K,H,W}(out_l - T_{g(l)} * [v > 1.1])^2 / 2`` over the four GlobalNet
  levels l (coarsest first); occluded and unlabelled keypoints get a zero label but every
  pixel still counts. TF-CPN additionally divides by the number of levels
  (``global_level_mean=True``).
* ``L_R = mean_b OHKM_b``: per-keypoint ``mean_{H,W}(refine - T_r)^2 * [v > 0.1]``, then per
  sample the sum of the top-8 keypoint values divided by 8 (masked keypoints contribute
  zeros, which can be picked when fewer than 8 are labelled; the divisor stays 8).

MSPN / RSN (megvii-detection/MSPN ``network.py _calculate_loss``, ``lib/utils/loss.py``):
for stage t and unit j (0 = coarsest) the target index is ``level_targets[j]``, or
``last_stage_targets[j]`` for the last stage (coarse-to-fine: kernels 15/11/9/7 for earlier
stages, 11/9/7/5 for the last). Units j < 3 use the plain joints L2,
``mean_b mean_{K,H,W}(pred - T * [v > 1])^2``, weighted by 1/4; unit 3 uses the OHKM variant
(``[v > 0]``, top 8) with weight 1. The total is the plain sum over stages and units.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
from torch import nn

from simplepose.errors import InputError

__all__ = ["CPNLoss", "CoarseToFineLoss", "joints_l2", "joints_ohkm", "ohkm"]

LOG = logging.getLogger(__name__)


def ohkm(per_keypoint: torch.Tensor, top_k: int = 8) -> torch.Tensor:
    """Online hard keypoint mining.

    Args:
        per_keypoint: (B, K) per-keypoint losses (already masked).
        top_k: M hardest keypoints per sample.

    Returns:
        scalar: ``mean_b (sum of the top_k values of row b) / top_k``.
    """
    if per_keypoint.dim() != 2:
        raise InputError(f"ohkm needs a (B, K) tensor, got {tuple(per_keypoint.shape)}")
    if not 0 < top_k <= per_keypoint.shape[1]:
        raise InputError(f"top_k must be in 1..K={per_keypoint.shape[1]}, got {top_k}")
    top = torch.topk(per_keypoint, k=top_k, dim=1, sorted=False).values
    return (top.sum(dim=1) / top_k).mean()


def _check_pair(pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor, what: str):
    if pred.dim() != 4 or pred.shape != target.shape:
        raise InputError(f"{what}: prediction {tuple(pred.shape)} and target "
                         f"{tuple(target.shape)} must both be (B, K, H, W)")
    if weights.shape != pred.shape[:2]:
        raise InputError(f"{what}: weights must be (B, K) = {tuple(pred.shape[:2])}, "
                         f"got {tuple(weights.shape)}")


def joints_l2(pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor,
              threshold: float = 1.0) -> torch.Tensor:
    """Plain joints L2: ``mean_{B,K,H,W}(pred - target * [weights > threshold])^2``.

    Args:
        pred, target: (B, K, H, W).
        weights: (B, K) visibility flags; keypoints at or below ``threshold`` get a zero
            label (their pixels still count).

    Returns:
        scalar loss (float32 for any input dtype).
    """
    _check_pair(pred, target, weights, "joints_l2")
    keep = (weights > threshold).to(torch.float32)[:, :, None, None]
    return (pred.float() - target.float() * keep).square().mean()


def joints_ohkm(pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor,
                top_k: int = 8, threshold: float = 0.0) -> torch.Tensor:
    """OHKM joints L2: per-keypoint ``mean_{H,W}(pred - target)^2 * [weights > threshold]``,
    then :func:`ohkm` with ``top_k``.

    Args:
        pred, target: (B, K, H, W).
        weights: (B, K) visibility flags.

    Returns:
        scalar loss (float32).
    """
    _check_pair(pred, target, weights, "joints_ohkm")
    per_kp = (pred.float() - target.float()).square().mean(dim=(2, 3))
    return ohkm(per_kp * (weights > threshold).to(torch.float32), top_k)


def _check_targets(targets: torch.Tensor, weights: torch.Tensor, needed: int, what: str):
    if targets.dim() != 5:
        raise InputError(f"{what}: targets must be (B, T, K, H, W), got {tuple(targets.shape)}")
    if targets.shape[1] < needed:
        raise InputError(f"{what}: need at least {needed} target kernels, "
                         f"got T = {targets.shape[1]}")
    if weights.shape != (targets.shape[0], targets.shape[2]):
        raise InputError(f"{what}: weights must be (B, K) = "
                         f"{(targets.shape[0], targets.shape[2])}, got {tuple(weights.shape)}")


class CPNLoss(nn.Module):
    """CPN loss ``L_G + L_R`` (module docstring has the formulas).

    Args:
        level_targets: target-kernel index of each GlobalNet level, coarsest first
            ((0, 1, 2, 3): coarse -> large kernel, PyTorch CPN; (3, 2, 1, 0) for TF-CPN).
        refine_target: target-kernel index of the RefineNet output (gk7 = 3).
        top_k: OHKM keypoints per sample (8).
        global_threshold: GlobalNet labels kept where the flag exceeds it (1.1: visible).
        refine_threshold: RefineNet keypoints kept where the flag exceeds it (0.1: labelled).
        global_level_mean: divide L_G by the number of levels (TF-CPN); False = PyTorch CPN.

    ``forward(global_outs, refine_out, targets, weights)``: four (B, K, H, W) GlobalNet maps,
    (B, K, H, W) RefineNet map, targets (B, T, K, H, W), weights (B, K). Returns a dict with
    scalar ``loss`` (the total), ``global`` and ``refine``.
    """

    def __init__(self, level_targets: Sequence[int] = (0, 1, 2, 3), refine_target: int = 3,
                 top_k: int = 8, global_threshold: float = 1.1, refine_threshold: float = 0.1,
                 global_level_mean: bool = False):
        super().__init__()
        self.level_targets = tuple(int(i) for i in level_targets)
        self.refine_target = int(refine_target)
        self.top_k = int(top_k)
        self.global_threshold = float(global_threshold)
        self.refine_threshold = float(refine_threshold)
        self.global_level_mean = bool(global_level_mean)

    @classmethod
    def from_codec(cls, codec, **kw) -> CPNLoss:
        """Take the level/refine target indices from a ``TopDownHeatmapCodec``."""
        return cls(level_targets=codec.level_targets, refine_target=codec.refine_target, **kw)

    def extra_repr(self) -> str:
        return (f"level_targets={self.level_targets}, refine_target={self.refine_target}, "
                f"top_k={self.top_k}, global_level_mean={self.global_level_mean}")

    def forward(self, global_outs: Sequence[torch.Tensor], refine_out: torch.Tensor,
                targets: torch.Tensor, weights: torch.Tensor) -> dict[str, torch.Tensor]:
        if len(global_outs) != len(self.level_targets):
            raise InputError(f"CPNLoss: {len(global_outs)} GlobalNet outputs but "
                             f"{len(self.level_targets)} level_targets")
        _check_targets(targets, weights, max(*self.level_targets, self.refine_target) + 1,
                       "CPNLoss")
        global_loss = sum(
            joints_l2(out, targets[:, t], weights, self.global_threshold) / 2.0
            for out, t in zip(global_outs, self.level_targets))
        if self.global_level_mean:
            global_loss = global_loss / len(global_outs)
        refine_loss = joints_ohkm(refine_out, targets[:, self.refine_target], weights,
                                  self.top_k, self.refine_threshold)
        return {"loss": global_loss + refine_loss, "global": global_loss, "refine": refine_loss}


class CoarseToFineLoss(nn.Module):
    """MSPN / RSN multi-stage coarse-to-fine loss (module docstring has the formulas).

    Args:
        level_targets: target-kernel index of units 0..3 of every stage but the last.
        last_stage_targets: indices for the last stage's units ((1, 2, 3, 4): coarse-to-fine
            as in the references); ``None`` uses ``level_targets`` for every stage.
        top_k: OHKM keypoints per sample for the finest unit (8).
        use_ohkm: OHKM on the finest unit (reference: True); False uses the plain L2 there.
        coarse_weight: weight of units 0..2 (1/4).
        l2_threshold: plain-L2 labels kept where the flag exceeds it (1: visible).
        ohkm_threshold: OHKM keypoints kept where the flag exceeds it (0: labelled).

    ``forward(stages, targets, weights)``: ``stages[t][u]`` (B, K, H, W) as returned by
    :class:`simplepose.models.mspn.MSPN` with ``return_stages``; targets (B, T, K, H, W);
    weights (B, K). Returns a dict with scalar ``loss`` and ``per_stage`` (a (S,) tensor of
    each stage's weighted sum).
    """

    def __init__(self, level_targets: Sequence[int] = (0, 1, 2, 3),
                 last_stage_targets: Sequence[int] | None = (1, 2, 3, 4), top_k: int = 8,
                 use_ohkm: bool = True, coarse_weight: float = 0.25, l2_threshold: float = 1.0,
                 ohkm_threshold: float = 0.0):
        super().__init__()
        self.level_targets = tuple(int(i) for i in level_targets)
        self.last_stage_targets = (None if last_stage_targets is None
                                   else tuple(int(i) for i in last_stage_targets))
        if self.last_stage_targets is not None and \
                len(self.last_stage_targets) != len(self.level_targets):
            raise InputError("level_targets and last_stage_targets must have the same length")
        self.top_k = int(top_k)
        self.use_ohkm = bool(use_ohkm)
        self.coarse_weight = float(coarse_weight)
        self.l2_threshold = float(l2_threshold)
        self.ohkm_threshold = float(ohkm_threshold)

    @classmethod
    def from_codec(cls, codec, **kw) -> CoarseToFineLoss:
        """Take the per-unit target indices from a ``TopDownHeatmapCodec``."""
        return cls(level_targets=codec.level_targets,
                   last_stage_targets=codec.last_stage_targets, **kw)

    def extra_repr(self) -> str:
        return (f"level_targets={self.level_targets}, "
                f"last_stage_targets={self.last_stage_targets}, top_k={self.top_k}, "
                f"use_ohkm={self.use_ohkm}, coarse_weight={self.coarse_weight}")

    def forward(self, stages: Sequence[Sequence[torch.Tensor]], targets: torch.Tensor,
                weights: torch.Tensor) -> dict[str, torch.Tensor]:
        if not stages:
            raise InputError("CoarseToFineLoss: no stage outputs")
        n_units = len(self.level_targets)
        if any(len(s) != n_units for s in stages):
            raise InputError(f"CoarseToFineLoss: every stage needs {n_units} unit outputs, "
                             f"got {[len(s) for s in stages]}")
        needed = max(self.level_targets + (self.last_stage_targets or ())) + 1
        _check_targets(targets, weights, needed, "CoarseToFineLoss")
        per_stage = []
        for t, units in enumerate(stages):
            last = t == len(stages) - 1
            index = self.last_stage_targets if (last and self.last_stage_targets) \
                else self.level_targets
            stage_loss = 0.0
            for u, (pred, k) in enumerate(zip(units, index)):
                if u == n_units - 1:
                    if self.use_ohkm:
                        term = joints_ohkm(pred, targets[:, k], weights, self.top_k,
                                           self.ohkm_threshold)
                    else:
                        term = joints_l2(pred, targets[:, k], weights, self.l2_threshold)
                else:
                    term = self.coarse_weight * joints_l2(pred, targets[:, k], weights,
                                                          self.l2_threshold)
                stage_loss = stage_loss + term
            per_stage.append(stage_loss)
        per_stage_t = torch.stack(per_stage)
        return {"loss": per_stage_t.sum(), "per_stage": per_stage_t}
