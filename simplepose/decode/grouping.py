"""Typed wrapper over the C++ keypoint assignment ``simplepose._grouping``.

The extension is imported on first use, not with the package, so that ``import simplepose``
works (and says what to do) when the build is missing.
"""

from __future__ import annotations

import logging

import numpy as np

from ..errors import ExtensionMissingError, InputError
from .params import GroupingParams
from .reference_grouping import GroupingResult, reference_group

__all__ = ["group", "load_extension", "GroupingResult"]

LOG = logging.getLogger(__name__)
_EXTENSION = None


def load_extension():
    """Import ``simplepose._grouping`` once; raise ExtensionMissingError if not built."""
    global _EXTENSION
    if _EXTENSION is None:
        try:
            from .. import _grouping
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ExtensionMissingError(
                "the C++ extension simplepose._grouping is not built; run `pip install -e .` "
                f"in the simplepose checkout ({exc})"
            ) from exc
        _EXTENSION = _grouping
    return _EXTENSION


def group(
    heatmaps: np.ndarray,
    limb_maps: np.ndarray,
    limbs,
    params: GroupingParams = GroupingParams(),
    scale_x: float = 1.0,
    scale_y: float = 1.0,
    image_height: float | None = None,
    backend: str = "cpp",
) -> GroupingResult:
    """Group keypoint peaks into people.

    Args:
        heatmaps: (P, H, W) float32 keypoint maps (heatmap px grid).
        limb_maps: (L, H, W) Gaussian limb maps or (L, 2, H, W) PAFs, float32.
        limbs: (L, 2) int part pairs (from, to) in processing order.
        params: grouping thresholds.
        scale_x, scale_y: heatmap px -> original px scale (for limb lengths).
        image_height: original image height in px (length prior); default H * scale_y.
        backend: ``"cpp"`` (the extension) or ``"reference"`` (pure Python, slow).

    Returns:
        GroupingResult with coordinates in heatmap px.

    Raises:
        InputError / TypeError / ValueError naming the bad argument.
    """
    limbs = np.asarray(limbs)
    if image_height is None:
        if np.ndim(heatmaps) != 3:
            raise InputError(f"heatmaps must have shape (parts, height, width), got {np.shape(heatmaps)}")
        image_height = float(np.shape(heatmaps)[1]) * scale_y
    if backend == "reference":
        _check_reference_inputs(heatmaps, limb_maps, limbs)
        return reference_group(heatmaps, limb_maps, limbs, params, scale_x, scale_y, image_height)
    if backend != "cpp":
        raise InputError(f"backend must be 'cpp' or 'reference', got {backend!r}")
    ext = load_extension()
    out = ext.group(
        heatmaps, limb_maps, limbs,
        scale_x=float(scale_x), scale_y=float(scale_y), image_height=float(image_height),
        peak_threshold=params.peak_threshold, max_peaks_per_part=params.max_peaks_per_part,
        limb_sample_threshold=params.limb_sample_threshold, limb_pass_ratio=params.limb_pass_ratio,
        limb_max_samples=params.limb_max_samples, length_prior=params.length_prior,
        limb_length_rate=params.limb_length_rate, merge_tolerance=params.merge_tolerance,
        priority_weights=tuple(params.priority_weights), min_parts=params.min_parts,
        min_mean_score=params.min_mean_score, person_score=params.person_score,
        attach_from_end=params.attach_from_end,
    )  # fmt: skip
    return GroupingResult(**out)


def _check_reference_inputs(heatmaps, limb_maps, limbs) -> None:
    """The checks the binding makes, for the Python path (same messages in spirit)."""
    for name, arr in (("heatmaps", heatmaps), ("limb_maps", limb_maps)):
        if not isinstance(arr, np.ndarray) or arr.dtype != np.float32:
            raise TypeError(f"{name} must be a float32 numpy array")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains NaN or inf")
    if heatmaps.ndim != 3 or min(heatmaps.shape) < 1:
        raise ValueError(f"heatmaps must have shape (parts, height, width), got {heatmaps.shape}")
    if limbs.ndim != 2 or limbs.shape[1] != 2 or not np.issubdtype(limbs.dtype, np.integer):
        raise ValueError(f"limbs must be integer with shape (num_limbs, 2), got {limbs.shape}")
    if limbs.size and (limbs.min() < 0 or limbs.max() >= heatmaps.shape[0]):
        raise ValueError("limbs refer to parts outside the heatmaps")
    expected = (len(limbs),) + ((2,) if limb_maps.ndim == 4 else ()) + heatmaps.shape[1:]
    if limb_maps.shape != expected:
        raise ValueError(f"limb_maps must have shape {expected}, got {limb_maps.shape}")
