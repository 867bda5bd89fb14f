"""IMHN: the improved multi-resolution hourglass network of SimplePose (SPEC section 3.5).

Source: ``hellojialee/Improved-Body-Parts`` @ 0fa17dff, ``models/posenet.py`` (``PoseNet``) and
``models/layers_transposed.py`` (``Residual``, ``Conv``, ``DilatedConv``, ``Backbone``,
``Hourglass``, ``SELayer``). This is a re-implementation with our own module names; the official
checkpoint is mapped onto it by :mod:`simplepose.convert.simplepose_imhn`.

Shape legend: B = batch; H x W = input size in pixels, both multiples of
``4 * 2**(num_scales - 1)`` (64 for the default 5 scales); C_j = ``inp_dim + j * increase`` =
channels of hourglass scale j; K = ``out_dim`` = 50 output maps.

Input frame and layout:
    ``forward`` takes **NCHW** float tensors (B, 3, H, W) holding **BGR / 255** in [0, 1], no mean
    or std normalisation (SPEC 3.3). The reference ``forward`` takes NHWC and permutes as its first
    op; we take NCHW like every other simplepose model, so callers permute once when they build the
    batch. The weights are identical either way (the permute has no parameters).

Outputs:
    a list of ``num_stacks`` lists of ``num_scales`` tensors. ``out[s][j]`` has shape
    (B, K, H / (4 * 2**j), W / (4 * 2**j)): stride 4, 8, 16, 32, 64 input pixels for j = 0..4.
    Channels 0-29 are limb maps, 30-47 the 18 internal keypoint heatmaps, 48 the person mask and 49
    the max over 30-47 (SPEC 3.1). Inference uses ``out[-1][0]``.

The default configuration (``build_imhn()``) has exactly 128,998,760 trainable parameters, like the
reference ``PoseNet(nstack=4, inp_dim=256, oup_dim=50, bn=True, increase=128)``.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import nn

from simplepose.errors import InputError

__all__ = [
    "IMHN",
    "IMHN_DEFAULTS",
    "ConvBN",
    "Hourglass",
    "HourglassLevel",
    "Residual",
    "ScaleFeatures",
    "SqueezeExcitation",
    "Stem",
    "build_imhn",
]

LOG = logging.getLogger(__name__)

#: Default keyword arguments of :func:`build_imhn` (the released SimplePose model).
IMHN_DEFAULTS = {
    "num_stacks": 4,
    "inp_dim": 256,
    "increase": 128,
    "out_dim": 50,
    "num_scales": 5,
    "stem_channels": 64,
    "se_reduction": 16,
    "norm": "bn",
}

_LRELU_SLOPE = 0.01
_DILATIONS = (3, 3, 4, 4, 5, 5)


def _norm_layer(norm: str, channels: int) -> nn.Module:
    if norm == "bn":
        return nn.BatchNorm2d(channels)
    if norm == "syncbn":
        return nn.SyncBatchNorm(channels)
    raise InputError(f"IMHN norm must be 'bn' or 'syncbn', got {norm!r}")


class ConvBN(nn.Module):
    """k x k conv (no bias, "same" padding) -> BN -> optional LeakyReLU(0.01).

    Used as the reference's ``Conv`` block (``act=True``), its ``DilatedConv`` (``dilation > 1``)
    and its ``Merge`` 1x1 conv + BN (``act=False``).
    (B, cin, H, W) -> (B, cout, H/stride, W/stride).
    """

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel_size: int = 3,
        *,
        stride: int = 1,
        dilation: int = 1,
        act: bool = True,
        norm: str = "bn",
    ):
        super().__init__()
        padding = dilation * (kernel_size - 1) // 2
        self.conv = nn.Conv2d(
            cin, cout, kernel_size, stride=stride, padding=padding, dilation=dilation, bias=False
        )
        self.bn = _norm_layer(norm, cout)
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return F.leaky_relu(x, _LRELU_SLOPE) if self.act else x


class Residual(nn.Module):
    """Bottleneck residual block ``cin -> cout`` (bottleneck width ``cout // 2``).

    1x1 conv + BN + LReLU -> 3x3 conv + BN + LReLU -> 1x1 conv + BN, plus the identity (or a 1x1
    conv + BN ``shortcut`` when ``cin != cout``), then LReLU. (B, cin, H, W) -> (B, cout, H, W).
    """

    def __init__(self, cin: int, cout: int, *, norm: str = "bn"):
        super().__init__()
        mid = cout // 2
        self.conv1 = nn.Conv2d(cin, mid, 1, bias=False)
        self.bn1 = _norm_layer(norm, mid)
        self.conv2 = nn.Conv2d(mid, mid, 3, padding=1, bias=False)
        self.bn2 = _norm_layer(norm, mid)
        self.conv3 = nn.Conv2d(mid, cout, 1, bias=False)
        self.bn3 = _norm_layer(norm, cout)
        self.shortcut = ConvBN(cin, cout, 1, act=False, norm=norm) if cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.leaky_relu(self.bn1(self.conv1(x)), _LRELU_SLOPE)
        y = F.leaky_relu(self.bn2(self.conv2(y)), _LRELU_SLOPE)
        y = self.bn3(self.conv3(y))
        skip = x if self.shortcut is None else self.shortcut(x)
        return F.leaky_relu(y + skip, _LRELU_SLOPE)


class Stem(nn.Module):
    """Stride-4 stem with a dilated branch (reference ``Backbone``).

    (B, 3, H, W) -> 7x7/2 ConvBN(3 -> stem_channels) -> Residual(-> out_dim/2) -> maxpool 2x2
    -> Residual(out_dim/2 -> out_dim/2) = x; six dilated 3x3 ConvBNs (dilation 3, 3, 4, 4, 5, 5)
    on x = x1; returns concat(x, x1): (B, out_dim, H/4, W/4). The reference hard-codes 64 and
    128 + 128, which is ``stem_channels=64, out_dim=256``.
    """

    def __init__(self, out_dim: int = 256, *, stem_channels: int = 64, norm: str = "bn"):
        super().__init__()
        if out_dim % 2:
            raise InputError(f"IMHN stem out_dim (inp_dim) must be even, got {out_dim}")
        half = out_dim // 2
        self.conv1 = ConvBN(3, stem_channels, 7, stride=2, norm=norm)
        self.res1 = Residual(stem_channels, half, norm=norm)
        self.res2 = Residual(half, half, norm=norm)
        self.dilated = nn.Sequential(
            *[ConvBN(half, half, 3, dilation=d, norm=norm) for d in _DILATIONS]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.res1(self.conv1(x))
        x = self.res2(F.max_pool2d(x, 2, 2))
        return torch.cat([x, self.dilated(x)], dim=1)


class HourglassLevel(nn.Module):
    """One level d of the hourglass, channels C_d -> C_{d+1} -> C_d.

    ``skip`` = Residual(C_d -> C_d) on the level input; ``down`` = Residual(C_d -> C_{d+1}) after a
    2x2 max-pool; ``up`` = Residual(C_{d+1} -> C_d) on the inner result; ``fuse`` = 3x3 ConvBN after
    a nearest x2 upsampling of ``up``'s output. Level output = skip + fuse.
    """

    def __init__(self, channels: int, increase: int, *, norm: str = "bn"):
        super().__init__()
        inner = channels + increase
        self.skip = Residual(channels, channels, norm=norm)
        self.down = Residual(channels, inner, norm=norm)
        self.up = Residual(inner, channels, norm=norm)
        self.fuse = ConvBN(channels, channels, 3, norm=norm)


class Hourglass(nn.Module):
    """Multi-resolution hourglass whose width grows by ``increase`` per 2x downsampling.

    Args:
        inp_dim: C_0, channels of the input and of the full-resolution output.
        increase: channel growth per level, C_d = inp_dim + d * increase.
        depth: number of downsampling levels (4 in the reference, giving 5 scales).

    ``forward``: (B, C_0, h, w) with h, w divisible by 2**depth -> list of ``depth + 1`` tensors:
    [level-0 output (B, C_0, h, w)] + [the inner result of level d (B, C_{d+1}, h/2**(d+1),
    w/2**(d+1)) for d = 0..depth-1], i.e. scales 1, 1/2, ..., 1/2**depth with C_0, C_1, ..., C_depth
    channels.
    """

    def __init__(
        self, inp_dim: int = 256, increase: int = 128, depth: int = 4, *, norm: str = "bn"
    ):
        super().__init__()
        self.depth = depth
        self.levels = nn.ModuleList(
            [HourglassLevel(inp_dim + d * increase, increase, norm=norm) for d in range(depth)]
        )
        bottom = inp_dim + depth * increase
        self.bottom = Residual(bottom, bottom, norm=norm)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        skips = []
        for level in self.levels:
            skips.append(level.skip(x))
            x = level.down(F.max_pool2d(x, 2, 2))
        x = self.bottom(x)
        inner = [None] * self.depth
        for d in range(self.depth - 1, -1, -1):
            level = self.levels[d]
            inner[d] = x
            up = F.interpolate(level.up(x), scale_factor=2.0, mode="nearest")
            x = skips[d] + level.fuse(up)
        return [x] + inner


class SqueezeExcitation(nn.Module):
    """Squeeze-excitation channel attention (reference ``SELayer``).

    Global average pool -> Linear(c -> c // r) -> LReLU -> Linear(c // r -> c) -> sigmoid ->
    channel-wise scale. (B, c, H, W) -> (B, c, H, W).
    """

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        if channels // reduction < 1:
            raise InputError(f"SE needs channels >= reduction, got {channels} and {reduction}")
        self.fc1 = nn.Linear(channels, channels // reduction)
        self.fc2 = nn.Linear(channels // reduction, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = x.mean(dim=(2, 3))
        w = torch.sigmoid(self.fc2(F.leaky_relu(self.fc1(w), _LRELU_SLOPE)))
        return x * w[:, :, None, None]


class ScaleFeatures(nn.Module):
    """Per-scale feature head (reference ``Features.before_regress[j]``).

    3x3 ConvBN(cin -> width) -> 3x3 ConvBN(width -> width) -> SE(width).
    (B, cin, h, w) -> (B, width, h, w).
    """

    def __init__(self, cin: int, width: int, *, se_reduction: int = 16, norm: str = "bn"):
        super().__init__()
        self.conv1 = ConvBN(cin, width, 3, norm=norm)
        self.conv2 = ConvBN(width, width, 3, norm=norm)
        self.se = SqueezeExcitation(width, se_reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.se(self.conv2(self.conv1(x)))


class IMHN(nn.Module):
    """Stacked multi-resolution hourglasses with per-scale heads and cross-stack merges.

    Args:
        num_stacks: number of hourglass stacks (4).
        inp_dim: stem output / hourglass C_0 / feature width (256).
        increase: hourglass channel growth per downsampling level (128).
        out_dim: output maps per scale (50, see SPEC 3.1).
        num_scales: supervised scales per stack = hourglass depth + 1 (5).
        stem_channels: channels of the 7x7 stem conv (64).
        se_reduction: squeeze-excitation reduction ratio (16).
        norm: ``"bn"`` (BatchNorm2d) or ``"syncbn"`` (SyncBatchNorm, for multi-GPU training).

    ``forward(x)``: x is (B, 3, H, W) float, BGR / 255, NCHW, H and W multiples of
    ``4 * 2**(num_scales - 1)``. Returns ``num_stacks`` lists of ``num_scales`` tensors,
    out[s][j] of shape (B, out_dim, H / (4 * 2**j), W / (4 * 2**j)).
    """

    def __init__(
        self,
        *,
        num_stacks: int = 4,
        inp_dim: int = 256,
        increase: int = 128,
        out_dim: int = 50,
        num_scales: int = 5,
        stem_channels: int = 64,
        se_reduction: int = 16,
        norm: str = "bn",
    ):
        super().__init__()
        if num_stacks < 1 or num_scales < 2:
            raise InputError(
                f"IMHN needs num_stacks >= 1 and num_scales >= 2, got {num_stacks} and {num_scales}"
            )
        self.num_stacks = num_stacks
        self.num_scales = num_scales
        self.out_dim = out_dim
        widths = [inp_dim + j * increase for j in range(num_scales)]
        self.stem = Stem(inp_dim, stem_channels=stem_channels, norm=norm)
        self.hourglasses = nn.ModuleList(
            [Hourglass(inp_dim, increase, num_scales - 1, norm=norm) for _ in range(num_stacks)]
        )
        self.features = nn.ModuleList(
            [
                nn.ModuleList(
                    [
                        ScaleFeatures(c, inp_dim, se_reduction=se_reduction, norm=norm)
                        for c in widths
                    ]
                )
                for _ in range(num_stacks)
            ]
        )
        self.heads = nn.ModuleList(
            [
                nn.ModuleList([nn.Conv2d(inp_dim, out_dim, 1) for _ in widths])
                for _ in range(num_stacks)
            ]
        )
        # Cross-stack merges exist between consecutive stacks only (num_stacks - 1 of each).
        self.merge_preds = nn.ModuleList(
            [
                nn.ModuleList([ConvBN(out_dim, c, 1, act=False, norm=norm) for c in widths])
                for _ in range(num_stacks - 1)
            ]
        )
        self.merge_features = nn.ModuleList(
            [
                nn.ModuleList([ConvBN(inp_dim, c, 1, act=False, norm=norm) for c in widths])
                for _ in range(num_stacks - 1)
            ]
        )
        self.reset_parameters()

    @property
    def stride_multiple(self) -> int:
        """H and W of the input must be multiples of this (64 for 5 scales)."""
        return 4 * 2 ** (self.num_scales - 1)

    def reset_parameters(self) -> None:
        """Reference init: conv N(0, 0.001), linear N(0, 0.01), biases 0, norm weight 1 / bias 0."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, 0.001)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.modules.batchnorm._BatchNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        if x.dim() != 4 or x.shape[1] != 3:
            raise InputError(
                f"IMHN expects an NCHW (B, 3, H, W) BGR/255 tensor, got shape {tuple(x.shape)}"
            )
        m = self.stride_multiple
        if x.shape[2] % m or x.shape[3] % m:
            raise InputError(
                f"IMHN input H and W must be multiples of {m}, got {tuple(x.shape[2:])}"
            )
        x = self.stem(x)
        outputs: list[list[torch.Tensor]] = []
        cache: list[torch.Tensor] | None = None
        for s in range(self.num_stacks):
            fms = self.hourglasses[s](x)
            if cache is not None:
                fms = [f + c for f, c in zip(fms, cache, strict=True)]
            feats = [self.features[s][j](fms[j]) for j in range(self.num_scales)]
            preds = [self.heads[s][j](feats[j]) for j in range(self.num_scales)]
            outputs.append(preds)
            if s < self.num_stacks - 1:
                cache = [
                    self.merge_preds[s][j](preds[j]) + self.merge_features[s][j](feats[j])
                    for j in range(self.num_scales)
                ]
                x = x + cache[0]
        return outputs


def build_imhn(**overrides) -> IMHN:
    """Build IMHN with :data:`IMHN_DEFAULTS` updated by ``overrides`` (keyword args of
    :class:`IMHN`).

    ``build_imhn()`` is the released SimplePose network (128,998,760 trainable parameters).
    Small configs for tests, e.g. ``build_imhn(num_stacks=1, inp_dim=32, increase=16,
    stem_channels=16, se_reduction=4)``.
    """
    unknown = set(overrides) - set(IMHN_DEFAULTS)
    if unknown:
        raise InputError(
            f"unknown IMHN option(s) {sorted(unknown)}; known: {sorted(IMHN_DEFAULTS)}"
        )
    kwargs = {**IMHN_DEFAULTS, **overrides}
    LOG.debug("building IMHN with %s", kwargs)
    return IMHN(**kwargs)
