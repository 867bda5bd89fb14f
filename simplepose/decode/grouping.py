"""Typed wrapper over the C++ keypoint assignment ``simplepose._grouping``.

The extension is imported on first use, not with the package, so that ``import simplepose``
works (and says what to do) when the build is missing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..errors import ExtensionMissingError, InputError
from .params import GroupingParams, check_bound
from .reference_grouping import reference_group

__all__ = ["GroupingResult", "group", "load_extension"]

LOG = logging.getLogger(__name__)
_EXTENSION = None


@dataclass
class GroupingResult:
    """Output of a grouping run: the C++ binding and the Python reference each return its
    fields as a dict of arrays, which ``group`` wraps in this.

    Attributes:
        peaks: (N, 4) float64: x, y (heatmap px), score, part index; peak ids are rows.
        people: (M, P, 3) float64: x, y (heatmap px), peak score per part; a missing part
            is all zeros.
        part_ids: (M, P) int64 peak id per part, -1 when missing.
        scores: (M,) float64 person score (``GroupingParams.person_score``).
        totals: (M,) float64 summed peak and limb scores.
        counts: (M,) int64 number of parts.
    """

    peaks: np.ndarray
    people: np.ndarray
    part_ids: np.ndarray
    scores: np.ndarray
    totals: np.ndarray
    counts: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)


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
    params: GroupingParams | None = None,
    scale_x: float = 1.0,
    scale_y: float = 1.0,
    image_height: float | None = None,
    backend: str = "cpp",
) -> GroupingResult:
    """Group keypoint peaks into people.

    Args:
        heatmaps: (P, H, W) float32 keypoint maps (heatmap px grid).
        limb_maps: (L, H, W) Gaussian limb maps or (L, 2, H, W) PAFs, float32.
        limbs: (L, 2) int part pairs (from, to) in processing order, any layout.
        params: grouping thresholds (default ``GroupingParams()``, where the defaults live).
        scale_x, scale_y: heatmap px -> original px scale (for limb lengths), within
            ``params.BOUNDS``.
        image_height: original image height in px (length prior); default H * scale_y.
        backend: ``"cpp"`` (the extension) or ``"reference"`` (pure Python, slow).

    Returns:
        GroupingResult with coordinates in heatmap px.

    Raises:
        InputError naming the bad argument, or the candidate count above
        ``params.max_candidate_pairs`` / ``max_candidate_samples``.
        KeyboardInterrupt: Ctrl-C interrupts a long C++ run within milliseconds.
    """
    params = GroupingParams() if params is None else params
    if not isinstance(params, GroupingParams):
        raise InputError(f"params must be a GroupingParams, got {type(params).__name__}")
    limbs = np.asarray(limbs)
    if image_height is None:
        if np.ndim(heatmaps) != 3:
            raise InputError(f"heatmaps must have shape (parts, height, width), got {np.shape(heatmaps)}")
        image_height = float(np.shape(heatmaps)[1]) * scale_y
    for name, value in (("scale_x", scale_x), ("scale_y", scale_y), ("image_height", image_height)):
        check_bound(value, name, name)
    if params.limb_length_priors and limbs.ndim == 2 and len(params.limb_length_priors) != len(limbs):
        raise InputError(
            f"params['limb_length_priors'] has {len(params.limb_length_priors)} values but limbs has {len(limbs)} rows"
        )
    if backend == "reference":
        _check_reference_inputs(heatmaps, limb_maps, limbs)
        out = reference_group(heatmaps, limb_maps, limbs, params, scale_x, scale_y, image_height)
        return GroupingResult(**out)
    if backend != "cpp":
        raise InputError(f"backend must be 'cpp' or 'reference', got {backend!r}")
    ext = load_extension()
    try:
        out = ext.group(
            heatmaps, limb_maps, limbs, params.to_dict(),
            scale_x=float(scale_x), scale_y=float(scale_y), image_height=float(image_height),
        )  # fmt: skip
    except (TypeError, ValueError) as exc:  # the binding's checks: one line, the project's type
        raise InputError(str(exc)) from None
    return GroupingResult(**out)


def _check_reference_inputs(heatmaps, limb_maps, limbs) -> None:
    """The checks the binding makes, for the Python path (same messages in spirit)."""
    for name, arr in (("heatmaps", heatmaps), ("limb_maps", limb_maps)):
        if not isinstance(arr, np.ndarray) or arr.dtype != np.float32:
            raise InputError(f"{name} must be a float32 numpy array")
        if not np.all(np.isfinite(arr)):
            raise InputError(f"{name} contains NaN or inf")
    if heatmaps.ndim != 3 or min(heatmaps.shape) < 1:
        raise InputError(f"heatmaps must have shape (parts, height, width), got {heatmaps.shape}")
    if limbs.ndim != 2 or limbs.shape[1] != 2 or not np.issubdtype(limbs.dtype, np.integer):
        raise InputError(f"limbs must be integer with shape (num_limbs, 2), got {limbs.shape}")
    if limbs.size and (limbs.min() < 0 or limbs.max() >= heatmaps.shape[0]):
        raise InputError("limbs refer to parts outside the heatmaps")
    expected = (len(limbs),) + ((2,) if limb_maps.ndim == 4 else ()) + heatmaps.shape[1:]
    if limb_maps.shape != expected:
        raise InputError(f"limb_maps must have shape {expected}, got {limb_maps.shape}")
