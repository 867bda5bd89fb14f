"""CPN: Cascaded Pyramid Network (Chen et al., CVPR 2018), top-down.

Follows the PyTorch re-implementation (GengDavid/pytorch-cpn, SPEC section 4.3), which the
parity fixtures ``cpn50``/``cpn101`` were generated from:

* backbone: ImageNet ResNet-50/101 -> C5, C4, C3, C2 (coarsest first);
* GlobalNet: FPN-like top-down pathway with one 17-channel heatmap per level;
* RefineNet: 3/2/1/0 bottlenecks per level, upsample, concat, one more bottleneck, predict.

Every bilinear resize uses ``align_corners=True``; the GlobalNet prediction applies its BN
*after* resizing to the output size, as the reference does. Heatmaps come out at stride 4
(64x48 for a 256x192 input, 96x72 for 384x288).

Module names mirror the reference checkpoint apart from three readable renames
(``resnet`` -> ``backbone``, ``nn.Sequential`` indices -> ``conv``/``bn`` names, and
``final_predict.{0,1,2}`` -> ``final_block``/``final_conv``/``final_bn``); see
:func:`simplepose.convert.topdown.convert_pytorch_cpn`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from simplepose.models.resnet import (
    Bottleneck,
    ConvBN,
    ResNet,
    projection_shortcut,
    resnet50,
    resnet101,
)

__all__ = ["CPN", "GlobalNet", "RefineBottleneck", "RefineNet", "build_cpn50", "build_cpn101"]

LOG = logging.getLogger(__name__)


def _resize(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Bilinear resize with ``align_corners=True`` (the reference's convention)."""
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=True)


class _GlobalPredict(nn.Module):
    """One GlobalNet head: 1x1 conv-BN-ReLU -> 3x3 conv to K -> resize -> BN(K).

    Shapes: (B, 256, h, w) -> (B, K, H_out, W_out).
    """

    def __init__(self, channels: int, num_keypoints: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, num_keypoints, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(num_keypoints)

    def forward(self, x: torch.Tensor, output_shape: Sequence[int]) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)), inplace=True)
        return self.bn2(_resize(self.conv2(x), output_shape))


class GlobalNet(nn.Module):
    """FPN-style GlobalNet.

    Args:
        in_channels: channels of the backbone features, coarsest first (2048, 1024, 512, 256).
        num_keypoints: K.
        channels: pyramid width (256).

    ``forward(features, output_shape)`` with ``features = [C5, C4, C3, C2]`` returns
    ``(pyramid, heatmaps)``: four (B, 256, h_i, w_i) maps F_0..F_3 and four (B, K, H_out,
    W_out) heatmaps, both coarsest first.

    The top-down upsampling resizes F_i to the exact size of lateral i+1. For the usual inputs
    (multiples of 32) this equals the reference's ``Upsample(scale_factor=2)``: with
    ``align_corners=True`` the interpolation weights depend only on the two sizes.
    """

    def __init__(self, in_channels: Sequence[int] = (2048, 1024, 512, 256),
                 num_keypoints: int = 17, channels: int = 256):
        super().__init__()
        n = len(in_channels)
        self.laterals = nn.ModuleList(ConvBN(c, channels, 1, relu=True) for c in in_channels)
        self.upsamples = nn.ModuleList(
            ConvBN(channels, channels, 1, relu=False) for _ in range(n - 1))
        self.predict = nn.ModuleList(_GlobalPredict(channels, num_keypoints) for _ in range(n))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Reference init: conv ~ N(0, sqrt(2 / (k*k*C_out))), BN weight 1 and bias 0."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / n))
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, features: Sequence[torch.Tensor], output_shape: Sequence[int]):
        pyramid, heatmaps = [], []
        up = None
        for i, x in enumerate(features):
            f = self.laterals[i](x)
            if up is not None:
                f = f + self.upsamples[i - 1](_resize(up, f.shape[-2:]))
            pyramid.append(f)
            heatmaps.append(self.predict[i](f, output_shape))
            up = f
        return pyramid, heatmaps


class RefineBottleneck(Bottleneck):
    """RefineNet bottleneck: 1x1 (C_in -> 128) -> 3x3 -> 1x1 (-> 256), always with a
    1x1 conv + BN projection shortcut (even when C_in == 256, as in the reference).

    Shapes: (B, C_in, H, W) -> (B, 2 * planes, H, W).
    """

    def __init__(self, inplanes: int, planes: int = 128):
        shortcut = projection_shortcut(inplanes, planes * 2, 1)
        super().__init__(inplanes, planes, 1, shortcut, expansion=2)


class RefineNet(nn.Module):
    """RefineNet: level i (coarsest first) passes through ``n - 1 - i`` bottlenecks, is
    resized to the output size, and the concatenation goes through one bottleneck, a 3x3
    conv to K channels and a BN (no ReLU).

    ``forward(pyramid, output_shape)``: four (B, 256, h_i, w_i) -> (B, K, H_out, W_out).
    """

    def __init__(self, channels: int = 256, num_keypoints: int = 17, num_levels: int = 4):
        super().__init__()
        self.cascade = nn.ModuleList(
            nn.Sequential(*[RefineBottleneck(channels) for _ in range(num_levels - 1 - i)])
            for i in range(num_levels))
        self.final_block = RefineBottleneck(channels * num_levels)
        self.final_conv = nn.Conv2d(256, num_keypoints, 3, padding=1, bias=False)
        self.final_bn = nn.BatchNorm2d(num_keypoints)

    def forward(self, pyramid: Sequence[torch.Tensor], output_shape: Sequence[int]) -> torch.Tensor:
        refined = [_resize(stage(f), output_shape) for stage, f in zip(self.cascade, pyramid)]
        out = self.final_block(torch.cat(refined, dim=1))
        return self.final_bn(self.final_conv(out))


class CPN(nn.Module):
    """Cascaded Pyramid Network.

    Args:
        backbone: a :class:`~simplepose.models.resnet.ResNet` without fc (Bottleneck blocks).
        num_keypoints: K (17 for COCO).
        output_shape: heatmap (H_out, W_out); ``None`` uses input size / 4 at run time.

    ``forward``: (B, 3, H, W) RGB/255 minus the pixel mean (no std), returns
    ``(global_outs, refine_out)``: a list of four (B, K, H_out, W_out) GlobalNet heatmaps
    from C5 (coarsest) to C2, and the (B, K, H_out, W_out) RefineNet heatmap used at test
    time. This is the reference's order and the order of the parity fixture outputs.
    """

    def __init__(self, backbone: ResNet, num_keypoints: int = 17,
                 output_shape: Sequence[int] | None = (64, 48)):
        super().__init__()
        if backbone.fc is not None:
            raise ValueError("CPN needs a ResNet trunk without fc (num_classes=None)")
        self.backbone = backbone
        self.num_keypoints = num_keypoints
        self.output_shape = None if output_shape is None else tuple(int(s) for s in output_shape)
        self.global_net = GlobalNet(tuple(reversed(backbone.out_channels)), num_keypoints)
        self.refine_net = RefineNet(256, num_keypoints)

    def forward(self, x: torch.Tensor):
        out_shape = self.output_shape or (x.shape[-2] // 4, x.shape[-1] // 4)
        c2, c3, c4, c5 = self.backbone(x)
        pyramid, global_outs = self.global_net([c5, c4, c3, c2], out_shape)
        refine_out = self.refine_net(pyramid, out_shape)
        return global_outs, refine_out


def _build(depth_fn, input_size, num_keypoints, output_shape) -> CPN:
    if output_shape is None and input_size is not None:
        output_shape = (int(input_size[0]) // 4, int(input_size[1]) // 4)
    model = CPN(depth_fn(), num_keypoints=num_keypoints, output_shape=output_shape)
    LOG.debug("built CPN, output_shape=%s, %d keypoints", model.output_shape, num_keypoints)
    return model


def build_cpn50(input_size: Sequence[int] | None = (256, 192), num_keypoints: int = 17,
                output_shape: Sequence[int] | None = None) -> CPN:
    """CPN on ResNet-50. ``input_size`` (H, W) fixes the heatmap size to input/4 unless
    ``output_shape`` is given; ``input_size=None`` and ``output_shape=None`` derive it per call.
    27,406,826 trainable parameters for K = 17."""
    return _build(resnet50, input_size, num_keypoints, output_shape)


def build_cpn101(input_size: Sequence[int] | None = (256, 192), num_keypoints: int = 17,
                 output_shape: Sequence[int] | None = None) -> CPN:
    """CPN on ResNet-101 (see :func:`build_cpn50`); 46,398,954 parameters for K = 17."""
    return _build(resnet101, input_size, num_keypoints, output_shape)
