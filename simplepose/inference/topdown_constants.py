"""Top-down constants: each family's input convention, the default test padding, the output
adapter and the top-down model table (which codec family decodes each model).

See :mod:`simplepose.inference.topdown` for how they are used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..codecs.topdown import TopDownHeatmapCodec
from ..data.topdown_transforms import CPN_TEST_PADDING, MSPN_TEST_PADDING
from ..errors import InputError

__all__ = [
    "CPN_INPUT",
    "MSPN_INPUT",
    "TOPDOWN_MODEL_SPECS",
    "TOPDOWN_TEST_PADDING",
    "InputConvention",
    "TopDownModelSpec",
    "default_input_convention",
    "default_padding",
    "select_heatmap",
]


# ------------------------------------------------------------------------ conventions
@dataclass(frozen=True)
class InputConvention:
    """How a family's network expects its input crop.

    Attributes:
        channel_order: ``"bgr"`` or ``"rgb"``: channel order of the network input.
        pixel_mean: (3,) 0..255 values in ``channel_order``, subtracted.
        pixel_std: (3,) 0..255 values in ``channel_order``, divided by.
        border_value: (3,) BGR 0..255 fill of crop pixels outside the image.
    """

    channel_order: str
    pixel_mean: tuple[float, float, float]
    pixel_std: tuple[float, float, float]
    border_value: tuple[float, float, float]


# PyTorch CPN: RGB in [0, 1] minus mean RGB (122.7717, 115.9465, 102.9801) / 255, no std;
# the image is padded with the pixel mean before cropping (SPEC 4.1).
CPN_INPUT = InputConvention(
    channel_order="rgb",
    pixel_mean=(122.7717, 115.9465, 102.9801),
    pixel_std=(255.0, 255.0, 255.0),
    border_value=(102.9801, 115.9465, 122.7717),
)
# MSPN / RSN: BGR ToTensor + Normalize(mean (0.406, 0.456, 0.485), std (0.225, 0.224, 0.229))
# (SPEC 5.1), constant-0 warp border.
MSPN_INPUT = InputConvention(
    channel_order="bgr",
    pixel_mean=(0.406 * 255, 0.456 * 255, 0.485 * 255),
    pixel_std=(0.225 * 255, 0.224 * 255, 0.229 * 255),
    border_value=(0.0, 0.0, 0.0),
)


def _family(codec: TopDownHeatmapCodec) -> str:
    return codec.name.split("_", 1)[0]


#: Default test-time box extension (f_w, f_h) of every family (HRNet / SimpleBaseline's 1.25).
#: Measured with the top-down oracle (GT boxes, shared val subset, 256x192, clean decode):
#: MSPN AP 0.945 at the MSPN reference (1.09, 1.135), 0.955 at CPN's (1.2, 1.3), 0.965 at
#: (1.25, 1.25). Every loss left is a labelled keypoint outside the crop (occluded hips and
#: legs below a box drawn around the visible upper body): with perfect maps the in-crop
#: keypoints reach OKS > 0.95 for all but one person. 1.25 lies inside MSPN's training
#: extension range (SPEC 5.1), but its effect on trained weights is not measured here.
TOPDOWN_TEST_PADDING = (1.25, 1.25)


def default_padding(codec: TopDownHeatmapCodec, padding=None) -> tuple[float, float]:
    """Resolve a ``padding`` option into ``(f_w, f_h)``.

    ``None``: :data:`TOPDOWN_TEST_PADDING`; ``"reference"``: the codec family's reference test
    extension (CPN (1.2, 1.3), MSPN/RSN (1.09, 1.135)); a number or pair: itself.
    """
    if padding is None:
        return TOPDOWN_TEST_PADDING
    if isinstance(padding, str):
        if padding != "reference":
            raise InputError(f"padding must be None, 'reference' or (f_w, f_h), got {padding!r}")
        return CPN_TEST_PADDING if _family(codec) == "cpn" else MSPN_TEST_PADDING
    pad = np.broadcast_to(np.asarray(padding, dtype=np.float64), (2,))
    if not (np.isfinite(pad).all() and (pad > 0).all()):
        raise InputError(f"padding must be positive, got {padding!r}")
    return (float(pad[0]), float(pad[1]))


def default_input_convention(codec: TopDownHeatmapCodec) -> InputConvention:
    """The training input convention of the codec's family: CPN -> :data:`CPN_INPUT`, MSPN /
    RSN -> :data:`MSPN_INPUT`."""
    return CPN_INPUT if _family(codec) == "cpn" else MSPN_INPUT


# ---------------------------------------------------------------- model output adapters
def select_heatmap(output):
    """The heatmap the decoder reads from any top-down model's forward output.

    * CPN: ``(global_outs list, refine_out)`` -> ``refine_out``;
    * MSPN / RSN in eval mode: the final heatmap tensor itself; with ``return_stages``:
      ``(heatmap, stages)`` -> ``heatmap``.

    Returns the (N, K, H_out, W_out) tensor.
    """
    if isinstance(output, (tuple, list)) and len(output) == 2:
        first, second = output
        if isinstance(first, (tuple, list)):  # CPN: (global_outs, refine_out)
            return second
        if isinstance(second, (tuple, list)):  # MSPN/RSN with stages: (heatmap, stages)
            return first
    if hasattr(output, "shape") and len(output.shape) == 4:
        return output
    raise InputError(
        f"cannot find the final heatmap in a model output of type {type(output).__name__}; "
        "pass output_adapter= to TopDownPipeline"
    )


@dataclass(frozen=True)
class TopDownModelSpec:
    """Registry entry: which codec family decodes a model and how to read its output."""

    codec_family: str
    output_adapter: Callable = select_heatmap


#: model registry name -> codec family (+ output adapter). The input size comes from the
#: checkpoint's ``model_kwargs["input_size"]`` (builders default to (256, 192)).
TOPDOWN_MODEL_SPECS: dict[str, TopDownModelSpec] = {
    "cpn50": TopDownModelSpec("cpn"),
    "cpn101": TopDownModelSpec("cpn"),
    "mspn": TopDownModelSpec("mspn"),
    "rsn18": TopDownModelSpec("rsn"),
    "rsn50": TopDownModelSpec("rsn"),
}
