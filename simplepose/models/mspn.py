"""MSPN: Multi-Stage Pose Network (Li et al., 2019), top-down, and the shared multi-stage
machinery that RSN (:mod:`simplepose.models.rsn`) reuses.

Follows the official code (megvii-detection/MSPN ``exps/mspn.2xstg.coco/network.py``,
SPEC section 5.3), which the ``mspn_2stg`` parity fixture was generated from:

* ``top``: 7x7/2 conv-BN-ReLU (3 -> 64) + 3x3/2 max-pool, run once;
* ``stage{t}``: a ResNet-style ``downsample`` encoder (layer1..layer4) and an ``upsample``
  decoder of four units (``up1`` coarsest .. ``up4`` finest), each emitting a K-channel
  heatmap resized to the output size;
* cross-stage aggregation: every non-last stage emits ``skip1``/``skip2`` features that are
  added after the next stage's layer1..layer4, and ``up4.cross_conv`` (256 -> 64), which
  replaces ``top`` as the next stage's input.

Every conv is a :class:`~simplepose.models.resnet.ConvBN` unit *with* conv bias, and every
bilinear resize uses ``align_corners=True``. Module names equal the official checkpoint
keys, so :func:`simplepose.convert.topdown.convert_mspn` only unwraps the container.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from simplepose.models.resnet import ConvBN, kaiming_init

__all__ = [
    "MSPN",
    "DownsampleModule",
    "MSPNBottleneck",
    "ResNetTop",
    "SingleStageModule",
    "UpsampleModule",
    "UpsampleUnit",
    "build_mspn",
    "conv_bn_relu",
    "output_shape_for",
]

LOG = logging.getLogger(__name__)

#: Decoder width (``UPSAMPLE_CHANNEL_NUM`` in the reference config).
UPSAMPLE_CHANNELS = 256


def conv_bn_relu(cin: int, cout: int, k: int = 1, stride: int = 1, relu: bool = True,
                 **kw) -> ConvBN:
    """The reference ``conv_bn_relu``: k x k conv *with bias* (same padding), BN, optional
    ReLU; ``kw`` goes to :class:`ConvBN` (e.g. ``groups``). (B, cin, H, W) -> (B, cout, H/s, W/s).
    """
    return ConvBN(cin, cout, k, stride, k // 2, bias=True, relu=relu, **kw)


def _resize(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=True)


class MSPNBottleneck(nn.Module):
    """ResNet-50 bottleneck built from conv-with-bias units (stride on the 3x3).

    Args:
        in_planes: input channels.
        planes: inner width; output is ``4 * planes``.
        stride: stride of ``conv_bn_relu2`` and of the shortcut.
        downsample: add a 1x1 conv-BN projection shortcut.

    Shapes: (B, in_planes, H, W) -> (B, 4 * planes, H/stride, W/stride).
    """

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1, downsample: bool = False):
        super().__init__()
        self.conv_bn_relu1 = conv_bn_relu(in_planes, planes, 1)
        self.conv_bn_relu2 = conv_bn_relu(planes, planes, 3, stride)
        self.conv_bn_relu3 = conv_bn_relu(planes, planes * self.expansion, 1, relu=False)
        self.downsample = (conv_bn_relu(in_planes, planes * self.expansion, 1, stride, relu=False)
                           if downsample else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv_bn_relu3(self.conv_bn_relu2(self.conv_bn_relu1(x)))
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(out + identity, inplace=True)


class ResNetTop(nn.Module):
    """Stem: 7x7/2 conv unit (3 -> 64, ReLU) + 3x3/2 max-pool (pad 1).

    Shapes: (B, 3, H, W) -> (B, 64, H/4, W/4).
    """

    def __init__(self, channels: int = 64):
        super().__init__()
        self.conv = conv_bn_relu(3, channels, 7, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(self.conv(x), kernel_size=3, stride=2, padding=1)


class DownsampleModule(nn.Module):
    """Encoder of one stage: ``layer1..layer4`` with widths 64/128/256/512 x expansion.

    Args:
        block: block class with ``expansion`` and signature
            ``block(in_planes, planes, stride, downsample, **block_kwargs)``.
        layers: blocks per layer, e.g. (3, 4, 6, 3).
        has_skip: add the previous stage's skip features after each layer.
        in_planes: channels of the stage input (64).
        block_kwargs: extra keyword arguments for every block.

    ``forward(x, skip1, skip2)``: x (B, 64, H/4, W/4); ``skip1``/``skip2`` are lists of four
    tensors ordered like layer1..layer4 (finest first), or None. Returns
    ``(x4, x3, x2, x1)``, coarsest first, at strides 32, 16, 8, 4.
    """

    def __init__(self, block, layers: Sequence[int], has_skip: bool = False,
                 in_planes: int = 64, block_kwargs: Mapping[str, Any] | None = None):
        super().__init__()
        self.has_skip = has_skip
        self._in_planes = in_planes
        self._block_kwargs = dict(block_kwargs or {})
        for i, (planes, n) in enumerate(zip((64, 128, 256, 512), layers)):
            self.add_module(f"layer{i + 1}", self._make_layer(block, planes, n, 1 if i == 0 else 2))
        self.out_channels = tuple(p * block.expansion for p in (64, 128, 256, 512))

    def _make_layer(self, block, planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = stride != 1 or self._in_planes != planes * block.expansion
        layers = [block(self._in_planes, planes, stride, downsample, **self._block_kwargs)]
        self._in_planes = planes * block.expansion
        layers += [block(self._in_planes, planes, 1, False, **self._block_kwargs)
                   for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, skip1: Sequence[torch.Tensor] | None = None,
                skip2: Sequence[torch.Tensor] | None = None):
        feats = []
        for i, layer in enumerate((self.layer1, self.layer2, self.layer3, self.layer4)):
            x = layer(x)
            if self.has_skip:
                x = x + skip1[i] + skip2[i]
            feats.append(x)
        return tuple(reversed(feats))


class UpsampleUnit(nn.Module):
    """One decoder unit (``up{index+1}``).

    Args:
        index: 0 (coarsest, from layer4) .. 3 (finest, from layer1).
        in_channels: channels C of the encoder feature it consumes.
        num_keypoints: K.
        channels: decoder width (256).
        gen_skip: build ``skip1`` (C -> C) and ``skip2`` (256 -> C) for the next stage.
        gen_cross_conv: build ``cross_conv`` (256 -> 64) for the next stage (index 3 only).

    ``forward(x, up_x, output_shape)``: x (B, C, h, w); ``up_x`` the previous unit's
    (B, 256, h', w') output or None for index 0. Returns ``(out, heatmap, skip1, skip2,
    cross)``: out (B, 256, h, w), heatmap (B, K, H_out, W_out), skip1/skip2 (B, C, h, w) or
    None, cross (B, 64, h, w) or None.

    The previous output is resized to the size of ``x``; the reference resizes to
    ``output_shape / 2**(3 - index)``, which is the same size whenever the output is
    input / 4 (always so in the released configs).
    """

    def __init__(self, index: int, in_channels: int, num_keypoints: int,
                 channels: int = UPSAMPLE_CHANNELS, gen_skip: bool = False,
                 gen_cross_conv: bool = False):
        super().__init__()
        self.index = index
        self.u_skip = conv_bn_relu(in_channels, channels, 1, relu=False)
        self.up_conv = conv_bn_relu(channels, channels, 1, relu=False) if index > 0 else None
        self.gen_skip = gen_skip
        if gen_skip:
            self.skip1 = conv_bn_relu(in_channels, in_channels, 1)
            self.skip2 = conv_bn_relu(channels, in_channels, 1)
        self.cross_conv = conv_bn_relu(channels, 64, 1) if (index == 3 and gen_cross_conv) else None
        self.res_conv1 = conv_bn_relu(channels, channels, 1)
        self.res_conv2 = conv_bn_relu(channels, num_keypoints, 3, relu=False)

    def forward(self, x: torch.Tensor, up_x: torch.Tensor | None, output_shape: Sequence[int]):
        out = self.u_skip(x)
        if self.up_conv is not None:
            out = out + self.up_conv(_resize(up_x, x.shape[-2:]))
        out = F.relu(out)
        heatmap = _resize(self.res_conv2(self.res_conv1(out)), output_shape)
        skip1 = skip2 = None
        if self.gen_skip:
            skip1 = self.skip1(x)
            skip2 = self.skip2(out)
        cross = self.cross_conv(out) if self.cross_conv is not None else None
        return out, heatmap, skip1, skip2, cross


class UpsampleModule(nn.Module):
    """Decoder of one stage: units ``up1``..``up4`` over (x4, x3, x2, x1).

    ``forward(feats, output_shape)`` with ``feats = (x4, x3, x2, x1)`` returns
    ``(heatmaps, skip1, skip2, cross)``: heatmaps is a list of four (B, K, H_out, W_out),
    coarsest unit first; skip1/skip2 are lists ordered finest first (aligned with the next
    stage's layer1..layer4) or None; cross is (B, 64, H/4, W/4) or None.
    """

    def __init__(self, in_channels: Sequence[int], num_keypoints: int,
                 channels: int = UPSAMPLE_CHANNELS, gen_skip: bool = False,
                 gen_cross_conv: bool = False):
        super().__init__()
        for i, c in enumerate(in_channels):
            self.add_module(f"up{i + 1}", UpsampleUnit(
                i, c, num_keypoints, channels, gen_skip=gen_skip, gen_cross_conv=gen_cross_conv))
        self.gen_skip = gen_skip

    def forward(self, feats: Sequence[torch.Tensor], output_shape: Sequence[int]):
        heatmaps, skip1, skip2 = [], [], []
        out, cross = None, None
        for unit, x in zip((self.up1, self.up2, self.up3, self.up4), feats):
            out, heatmap, s1, s2, c = unit(x, out, output_shape)
            heatmaps.append(heatmap)
            skip1.append(s1)
            skip2.append(s2)
            cross = c if c is not None else cross
        if not self.gen_skip:
            return heatmaps, None, None, cross
        return heatmaps, skip1[::-1], skip2[::-1], cross


class SingleStageModule(nn.Module):
    """One stage: ``downsample`` encoder + ``upsample`` decoder.

    Args:
        block, layers, block_kwargs: encoder blocks (see :class:`DownsampleModule`).
        num_keypoints: K.
        has_skip: this stage receives skip features (every stage but the first).
        gen_skip: this stage emits skip and cross features (every stage but the last).

    ``forward(x, skip1, skip2, output_shape)``: x (B, 64, H/4, W/4). Returns
    ``(heatmaps, skip1, skip2, cross)`` as :class:`UpsampleModule`.
    """

    def __init__(self, block, layers: Sequence[int], num_keypoints: int, has_skip: bool,
                 gen_skip: bool, block_kwargs: Mapping[str, Any] | None = None,
                 channels: int = UPSAMPLE_CHANNELS):
        super().__init__()
        self.downsample = DownsampleModule(block, layers, has_skip, block_kwargs=block_kwargs)
        self.upsample = UpsampleModule(
            tuple(reversed(self.downsample.out_channels)), num_keypoints, channels,
            gen_skip=gen_skip, gen_cross_conv=gen_skip)

    def forward(self, x, skip1, skip2, output_shape: Sequence[int]):
        return self.upsample(self.downsample(x, skip1, skip2), output_shape)


class MSPN(nn.Module):
    """Multi-stage pose network (MSPN, and RSN with residual-steps blocks).

    Args:
        block: encoder block class (:class:`MSPNBottleneck` for MSPN,
            :class:`simplepose.models.rsn.ResidualStepsBlock` for RSN).
        layers: blocks per encoder layer.
        num_stages: S >= 1.
        num_keypoints: K.
        output_shape: heatmap (H_out, W_out); ``None`` uses input / 4 at run time.
        block_kwargs: extra keyword arguments for every block.
        prm: optional module refining the final heatmap, (B, K, H_out, W_out) ->
            (B, K, H_out, W_out) (RSN's Pose Refine Machine); registered as ``prm``.

    ``forward(x, return_stages=None)``: x (B, 3, H, W), BGR normalised with the ImageNet
    mean/std. Returns the final heatmap (B, K, H_out, W_out) (last stage, finest unit, after
    ``prm`` when present). With ``return_stages`` (default: ``self.training``) returns
    ``(heatmap, stages)`` where ``stages[t][u]`` is stage t, unit u (0 = coarsest), each
    (B, K, H_out, W_out); ``stages[-1][-1] is heatmap``. These are the maps the
    coarse-to-fine loss supervises and what the parity fixtures call ``aux``.
    """

    def __init__(self, block, layers: Sequence[int], num_stages: int = 2,
                 num_keypoints: int = 17, output_shape: Sequence[int] | None = (64, 48),
                 block_kwargs: Mapping[str, Any] | None = None, prm: nn.Module | None = None):
        super().__init__()
        if num_stages < 1:
            raise ValueError(f"num_stages must be >= 1, got {num_stages}")
        self.num_stages = num_stages
        self.num_keypoints = num_keypoints
        self.output_shape = None if output_shape is None else tuple(int(s) for s in output_shape)
        self.top = ResNetTop()
        for t in range(num_stages):
            self.add_module(f"stage{t}", SingleStageModule(
                block, layers, num_keypoints, has_skip=t > 0, gen_skip=t < num_stages - 1,
                block_kwargs=block_kwargs))
        self.prm = prm
        self.reset_parameters()

    @property
    def stages(self) -> list[SingleStageModule]:
        return [getattr(self, f"stage{t}") for t in range(self.num_stages)]

    def reset_parameters(self) -> None:
        """Reference init: Kaiming-normal (fan_out) convs, BN weight 1 and bias 0."""
        kaiming_init(self)

    def forward(self, x: torch.Tensor, return_stages: bool | None = None):
        output_shape = self.output_shape or (x.shape[-2] // 4, x.shape[-1] // 4)
        x = self.top(x)
        skip1 = skip2 = None
        stages = []
        for stage in self.stages:
            heatmaps, skip1, skip2, x = stage(x, skip1, skip2, output_shape)
            stages.append(heatmaps)
        if self.prm is not None:
            stages[-1][-1] = self.prm(stages[-1][-1])
        heatmap = stages[-1][-1]
        if return_stages is None:
            return_stages = self.training
        return (heatmap, stages) if return_stages else heatmap


def output_shape_for(input_size: Sequence[int] | None,
                     output_shape: Sequence[int] | None) -> Sequence[int] | None:
    """Heatmap size: ``output_shape`` if given, else ``input_size / 4``, else None (dynamic)."""
    if output_shape is None and input_size is not None:
        output_shape = (int(input_size[0]) // 4, int(input_size[1]) // 4)
    return output_shape


def build_mspn(num_stages: int = 2, num_keypoints: int = 17,
               input_size: Sequence[int] | None = (256, 192),
               output_shape: Sequence[int] | None = None) -> MSPN:
    """MSPN with ResNet-50 stages ([3, 4, 6, 3] bottlenecks).

    Trainable parameters for K = 17: 25,141,708 / 56,867,032 / 88,592,356 / 120,317,680 for
    1 / 2 / 3 / 4 stages. The heatmap size is ``input_size / 4`` unless ``output_shape`` is
    given.
    """
    model = MSPN(MSPNBottleneck, (3, 4, 6, 3), num_stages, num_keypoints,
                 output_shape_for(input_size, output_shape))
    LOG.debug("built MSPN: %d stages, output_shape=%s", num_stages, model.output_shape)
    return model
