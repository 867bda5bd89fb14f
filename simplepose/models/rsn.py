"""RSN: Residual Steps Network with the Pose Refine Machine (Cai et al., ECCV 2020).

RSN is MSPN (:mod:`simplepose.models.mspn`: top, stages, upsample units, skips and cross
conv) with the ResNet bottleneck replaced by the Residual Steps Block (SPEC section 6.1,
official ``caiyuanhao1998/RSN exps/RSN18.coco/network.py``). Module names equal the
official checkpoint keys (``conv_bn_relu2_{i}_{j}`` is step y_ij of the block), so
:func:`simplepose.convert.topdown.convert_rsn` only unwraps the container.

The Pose Refine Machine (:class:`PRM`) is off by default: the released code defines it but
never instantiates it. With ``use_prm=True`` it refines the last stage's finest heatmap
(after the resize), the placement the SPEC recommends.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from simplepose.models.mspn import MSPN, conv_bn_relu, output_shape_for

__all__ = ["PRM", "RSN_LAYERS", "ResidualStepsBlock", "build_rsn", "build_rsn18", "build_rsn50"]

LOG = logging.getLogger(__name__)

#: Blocks per encoder layer. RSN-50 follows MMPOSE (not in the official repository).
RSN_LAYERS = {18: (2, 2, 2, 2), 50: (3, 4, 6, 3)}


class ResidualStepsBlock(nn.Module):
    """Residual Steps Block (expansion 1).

    With branch width ``b = in_planes * 26 // 64`` and ``n = num_steps`` (4):
    ``z = ReLU(BN(conv1x1(in -> n*b, stride)))`` is split into z_1..z_n; step (i, j) is a
    3x3 conv-BN-ReLU ``conv_bn_relu2_{i}_{j}`` with
    ``y_i1 = f(z_i + y_{i-1,1})`` and ``y_ij = f(y_{i,j-1} + y_{i-1,j})`` (the second term
    only while j < i); ``conv_bn_relu3`` (1x1, no ReLU) fuses concat(y_11, y_22, ..., y_nn),
    then shortcut add and ReLU.

    Args:
        in_planes: input channels.
        planes: output channels.
        stride: stride of ``conv_bn_relu1`` (the 1x1) and of the shortcut.
        downsample: add a 1x1 conv-BN projection shortcut.
        num_steps: number of branches n (>= 2).
        expand_times: branch width numerator (b = in_planes * expand_times // 64).

    Shapes: (B, in_planes, H, W) -> (B, planes, H/stride, W/stride).
    """

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1, downsample: bool = False,
                 num_steps: int = 4, expand_times: int = 26):
        super().__init__()
        if num_steps < 2:
            raise ValueError(f"num_steps must be >= 2, got {num_steps}")
        self.num_steps = num_steps
        self.branch_channels = in_planes * expand_times // 64
        b = self.branch_channels
        self.conv_bn_relu1 = conv_bn_relu(in_planes, num_steps * b, 1, stride)
        for i in range(1, num_steps + 1):
            for j in range(1, i + 1):
                self.add_module(f"conv_bn_relu2_{i}_{j}", conv_bn_relu(b, b, 3))
        self.conv_bn_relu3 = conv_bn_relu(num_steps * b, planes * self.expansion, 1, relu=False)
        self.downsample = (conv_bn_relu(in_planes, planes * self.expansion, 1, stride, relu=False)
                           if downsample else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = torch.split(self.conv_bn_relu1(x), self.branch_channels, dim=1)
        prev: list[torch.Tensor] = []  # y_{i-1, 1..i-1}
        ends = []
        for i in range(1, self.num_steps + 1):
            cur = []
            for j in range(1, i + 1):
                inp = z[i - 1] if j == 1 else cur[-1]
                if j < i:
                    inp = inp + prev[j - 1]
                cur.append(getattr(self, f"conv_bn_relu2_{i}_{j}")(inp))
            ends.append(cur[-1])
            prev = cur
        out = self.conv_bn_relu3(torch.cat(ends, dim=1))
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(out + identity, inplace=True)


class PRM(nn.Module):
    """Pose Refine Machine on K-channel heatmaps (RSN ``4XRSN18`` definition).

    ``o = conv_bn_relu_prm_1(x)`` (3x3); channel attention
    ``a = sigmoid(prm_2_2(prm_2_1(GAP(o))))`` (two 1x1 conv-BN-ReLU); spatial attention
    ``m = sigmoid(prm_3_2(prm_3_1(o)))`` (1x1, then depthwise 9x9, both conv-BN-ReLU);
    output ``o * (1 + a * m)``. A ReLU precedes each sigmoid, so a, m lie in [0.5, 1).
    5,100 parameters for K = 17.

    Note: the channel path runs BN on a 1x1 map, so training mode needs batch size > 1.

    Shapes: (B, K, H, W) -> (B, K, H, W).
    """

    def __init__(self, channels: int):
        super().__init__()
        k = channels
        self.conv_bn_relu_prm_1 = conv_bn_relu(k, k, 3)
        self.conv_bn_relu_prm_2_1 = conv_bn_relu(k, k, 1)
        self.conv_bn_relu_prm_2_2 = conv_bn_relu(k, k, 1)
        self.conv_bn_relu_prm_3_1 = conv_bn_relu(k, k, 1)
        self.conv_bn_relu_prm_3_2 = conv_bn_relu(k, k, 9, groups=k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        o = self.conv_bn_relu_prm_1(x)
        a = torch.sigmoid(self.conv_bn_relu_prm_2_2(self.conv_bn_relu_prm_2_1(
            F.adaptive_avg_pool2d(o, 1))))
        m = torch.sigmoid(self.conv_bn_relu_prm_3_2(self.conv_bn_relu_prm_3_1(o)))
        return o * (1 + a * m)


def build_rsn(depth: int = 18, num_stages: int = 1, num_keypoints: int = 17,
              input_size: Sequence[int] | None = (256, 192),
              output_shape: Sequence[int] | None = None, use_prm: bool = False,
              num_steps: int = 4) -> MSPN:
    """RSN of the given depth (18 or 50); see :func:`build_rsn18`."""
    if depth not in RSN_LAYERS:
        raise ValueError(f"unsupported RSN depth {depth}; choose from {sorted(RSN_LAYERS)}")
    model = MSPN(ResidualStepsBlock, RSN_LAYERS[depth], num_stages, num_keypoints,
                 output_shape_for(input_size, output_shape),
                 block_kwargs={"num_steps": num_steps},
                 prm=PRM(num_keypoints) if use_prm else None)
    LOG.debug("built RSN-%d: %d stages, prm=%s, output_shape=%s",
              depth, num_stages, use_prm, model.output_shape)
    return model


def build_rsn18(num_stages: int = 1, num_keypoints: int = 17,
                input_size: Sequence[int] | None = (256, 192),
                output_shape: Sequence[int] | None = None, use_prm: bool = False,
                num_steps: int = 4) -> MSPN:
    """RSN-18: residual-steps blocks [2, 2, 2, 2] with widths 64/128/256/512.

    ``num_stages=1`` is the released ``RSN18.coco`` (9,159,072 parameters for K = 17),
    ``num_stages=4`` is ``4XRSN18.coco`` (38,456,256). ``use_prm`` adds the Pose Refine
    Machine on the final heatmap (+5,100 parameters for K = 17). The heatmap size is
    ``input_size / 4`` unless ``output_shape`` is given.
    """
    return build_rsn(18, num_stages, num_keypoints, input_size, output_shape, use_prm, num_steps)


def build_rsn50(num_stages: int = 2, num_keypoints: int = 17,
                input_size: Sequence[int] | None = (256, 192),
                output_shape: Sequence[int] | None = None, use_prm: bool = False,
                num_steps: int = 4) -> MSPN:
    """RSN-50: residual-steps blocks [3, 4, 6, 3] (MMPOSE's layout; not in the official
    repository). The default of 2 stages follows MMPOSE's ``2xrsn50`` config."""
    return build_rsn(50, num_stages, num_keypoints, input_size, output_shape, use_prm, num_steps)
