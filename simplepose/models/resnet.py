"""ResNet-18/50/101 backbones written for simplepose (no torchvision dependency).

Parameter names follow the standard ImageNet ResNet checkpoints (torchvision layout):
``conv1``, ``bn1``, ``layer{1..4}.{b}.conv{1,2,3}`` / ``bn{1,2,3}``, ``layer{l}.0.downsample.{0,1}``
and, when the classifier head is kept, ``fc``. The stride of a bottleneck sits on its 3x3
conv (``conv2``), as in torchvision and in the PyTorch CPN reference.

``ResNet.forward`` returns the four stage features ``(C2, C3, C4, C5)`` at strides 4, 8, 16
and 32, finest first. The module also holds :class:`ConvBN`, the conv + BN (+ ReLU) unit the
top-down models (CPN, MSPN, RSN) build on.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import torch
from torch import nn

__all__ = [
    "RESNET_LAYERS",
    "BasicBlock",
    "Bottleneck",
    "ConvBN",
    "ResNet",
    "projection_shortcut",
    "resnet18",
    "resnet50",
    "resnet101",
]

LOG = logging.getLogger(__name__)



def kaiming_init(module: nn.Module) -> None:
    """Kaiming-normal (fan_out) convs, BN weight 1 / bias 0: torchvision's ResNet scheme, also
    the MSPN/RSN reference init."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

class ConvBN(nn.Module):
    """``conv -> BatchNorm2d -> optional ReLU``, parameters under ``.conv`` and ``.bn``.

    Args:
        in_channels: input channels C_in.
        out_channels: output channels C_out.
        kernel_size: square kernel size; padding defaults to ``kernel_size // 2``.
        stride: conv stride.
        padding: explicit padding (``None``: same padding for odd kernels).
        bias: whether the conv has a bias (MSPN/RSN: yes; CPN/ResNet: no).
        relu: append a ReLU.
        groups: conv groups (depthwise when equal to ``in_channels``).

    Shapes: (B, C_in, H, W) -> (B, C_out, H', W').
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 1,
        stride: int = 1,
        padding: int | None = None,
        *,
        bias: bool = False,
        relu: bool = True,
        groups: int = 1,
    ):
        super().__init__()
        if padding is None:
            padding = kernel_size // 2
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride=stride, padding=padding,
            bias=bias, groups=groups,
        )
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True) if relu else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        if self.relu is not None:
            x = self.relu(x)
        return x


def projection_shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    """Projection shortcut ``downsample.0`` (1x1 conv, no bias) + ``downsample.1`` (BN)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
        nn.BatchNorm2d(out_channels),
    )


class BasicBlock(nn.Module):
    """ResNet-18/34 block: 3x3 (stride) -> 3x3, identity or projection shortcut, ReLU.

    Shapes: (B, inplanes, H, W) -> (B, planes, H/stride, W/stride).
    """

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """ResNet bottleneck: 1x1 -> 3x3 (stride) -> 1x1 (x expansion), shortcut, ReLU.

    Args:
        inplanes: input channels.
        planes: width of the 1x1/3x3 convs; output channels are ``planes * expansion``.
        stride: stride of the 3x3 conv (and of the projection shortcut).
        downsample: projection shortcut module, or ``None`` for identity.
        expansion: output multiplier; defaults to the class value 4. CPN's RefineNet uses 2.

    Shapes: (B, inplanes, H, W) -> (B, planes * expansion, H/stride, W/stride).
    """

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None, expansion: int | None = None):
        super().__init__()
        if expansion is not None:
            self.expansion = expansion
        out = planes * self.expansion
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


RESNET_LAYERS: dict[int, tuple[type[nn.Module], tuple[int, int, int, int]]] = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}


class ResNet(nn.Module):
    """ImageNet ResNet trunk that returns its four stage features.

    Args:
        block: :class:`BasicBlock` or :class:`Bottleneck`.
        layers: blocks per stage, e.g. ``(3, 4, 6, 3)`` for ResNet-50.
        num_classes: ``None`` (default) drops the ``avgpool``/``fc`` head; an int keeps an
            ``fc`` layer of that many classes (see :meth:`classify`), so ImageNet
            checkpoints load with ``strict=True`` either way (see :meth:`load_imagenet`).

    ``forward``: (B, 3, H, W) -> ``(C2, C3, C4, C5)`` with shapes
    (B, 64e, H/4, W/4), (B, 128e, H/8, W/8), (B, 256e, H/16, W/16), (B, 512e, H/32, W/32),
    where e is the block expansion (1 or 4). Spatial sizes follow the conv arithmetic
    (ceil division) for sizes that are not multiples of 32.
    """

    def __init__(self, block: type[nn.Module], layers: Sequence[int],
                 num_classes: int | None = None):
        super().__init__()
        if len(layers) != 4:
            raise ValueError(f"ResNet needs 4 stage depths, got {list(layers)}")
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.out_channels = tuple(c * block.expansion for c in (64, 128, 256, 512))
        if num_classes is not None:
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(512 * block.expansion, num_classes)
        else:
            self.avgpool = None
            self.fc = None
        self.reset_parameters()

    def _make_layer(self, block, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = projection_shortcut(self.inplanes, planes * block.expansion, stride)
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def reset_parameters(self) -> None:
        kaiming_init(self)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        c2 = self.layer1(x)
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        c5 = self.layer4(c4)
        return c2, c3, c4, c5

    def classify(self, c5: torch.Tensor) -> torch.Tensor:
        """ImageNet logits from the last stage feature: (B, 512e, h, w) -> (B, num_classes)."""
        if self.fc is None:
            raise RuntimeError("this ResNet was built without a classifier head (num_classes=None)")
        return self.fc(torch.flatten(self.avgpool(c5), 1))

    def load_imagenet(self, state_dict: Mapping[str, torch.Tensor], strict: bool = True):
        """Load a standard ImageNet ResNet state dict.

        ``module.`` prefixes are stripped, and the ``fc.*`` entries are dropped when this
        trunk has no classifier head. Returns ``load_state_dict``'s result.
        """
        sd = {}
        for k, v in state_dict.items():
            while k.startswith("module."):
                k = k[len("module."):]
            if self.fc is None and k.startswith("fc."):
                continue
            sd[k] = v
        return self.load_state_dict(sd, strict=strict)


def _resnet(depth: int, num_classes: int | None) -> ResNet:
    if depth not in RESNET_LAYERS:
        raise ValueError(f"unsupported ResNet depth {depth}; choose from {sorted(RESNET_LAYERS)}")
    block, layers = RESNET_LAYERS[depth]
    return ResNet(block, layers, num_classes=num_classes)


def resnet18(num_classes: int | None = None) -> ResNet:
    """ResNet-18 trunk (BasicBlock, [2, 2, 2, 2]); 11,176,512 parameters without fc."""
    return _resnet(18, num_classes)


def resnet50(num_classes: int | None = None) -> ResNet:
    """ResNet-50 trunk (Bottleneck, [3, 4, 6, 3]); 23,508,032 parameters without fc."""
    return _resnet(50, num_classes)


def resnet101(num_classes: int | None = None) -> ResNet:
    """ResNet-101 trunk (Bottleneck, [3, 4, 23, 3]); 42,500,160 parameters without fc."""
    return _resnet(101, num_classes)
