"""Parameters of the bottom-up keypoint assignment (grouping), defined once for the C++
implementation and the Python reference.

Defaults are SimplePose's (SPEC 3.9); the fields marked "clean" replace a reference quirk
and have a ``reference`` value selectable for parity with the original post-processing.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, fields, replace

from ..errors import InputError

__all__ = ["BOUNDS", "PERSON_SCORE_MODES", "REFERENCE_SIMPLEPOSE", "GroupingParams", "check_bound"]

PERSON_SCORE_MODES = ("mean", "one_minus_inv_total")

# Inclusive bounds of every numeric field (each of the three ``priority_weights``) and of the
# grouping call's scales. They keep every quantity of the algorithm finite and its memory and
# time bounded. The binding (csrc/src/bindings.cpp) enforces the same table for direct
# callers; tests/test_grouping_limits.py checks that the two agree.
BOUNDS: dict[str, tuple] = {
    "peak_threshold": (-1e6, 1e6),
    "limb_sample_threshold": (-1e6, 1e6),
    "limb_pass_ratio": (0.0, 1.0),
    "limb_length_rate": (0.0, 1e6),
    "merge_tolerance": (0.0, 1e6),
    "min_mean_score": (-1e6, 1e6),
    "priority_weights": (-1e6, 1e6),
    "limb_length_outlier": (0.0, 1e6),
    "limb_length_priors": (1e-3, 1e3),
    "max_peaks_per_part": (1, 1_000_000),
    "limb_max_samples": (2, 10_000),
    "min_parts": (1, 1_000_000),
    "max_candidate_pairs": (1, 10_000_000),
    "max_candidate_samples": (1, 100_000_000_000),
    "scale_x": (1e-6, 1e6),
    "scale_y": (1e-6, 1e6),
    "image_height": (1e-6, 1e9),
}


def check_bound(value, name: str, what: str) -> None:
    """Raise InputError unless ``value`` is finite and within ``BOUNDS[name]``."""
    lo, hi = BOUNDS[name]
    if not (isinstance(value, numbers.Real) and math.isfinite(value) and lo <= value <= hi):
        raise InputError(f"{what} must be a finite number in [{lo}, {hi}], got {value!r}")


@dataclass(frozen=True)
class GroupingParams:
    """Thresholds of peak finding, limb scoring and person assembly.

    The single source of the grouping defaults: the C++ extension receives ``to_dict()``
    and has no defaults of its own. Lengths are in original-image px; map values are in the
    network's [0, 1] units. Numeric fields must lie within ``BOUNDS``.

    Attributes:
        peak_threshold: a keypoint peak needs a heatmap value >= this (``thre1``).
        max_peaks_per_part: keep at most this many peaks per part, highest first. Bounds
            the pair count (SimplePose's unused ``topk`` made real), so a noisy map
            cannot make the grouping quadratic in thousands of peaks.
        limb_sample_threshold: a limb sample passes when its value is > this (``thre2``).
        limb_pass_ratio: a candidate needs at least this fraction of passing samples
            (``connect_ration``; the reference evaluate.py compares with >=).
        limb_max_samples: at most this many samples along a candidate (``mid_num``).
        length_prior: subtract ``max(0, 1 - 0.5 * image_height / length)`` from the limb
            score, penalising limbs longer than half the image height.
        limb_length_rate: a part joins a person only when ``rate * person max limb length
            > limb length`` (``len_rate``).
        merge_tolerance: two disjoint persons merge through a limb only when its score is
            >= ``tolerance * min part score`` of both (``connection_tole``).
        priority_weights: candidate priority = w0*limb score + w1*score_a + w2*score_b.
        min_parts: a person needs at least this many parts (2 in evaluate.py, 4 in the
            reference demo).
        min_mean_score: a person needs total score / part count >= this.
        person_score: ``"mean"`` (total/count, clean, +0.3 AP in SKM) or
            ``"one_minus_inv_total"`` (the reference ``1 - 1/total``).
        attach_from_end: clean: when a connection matches a person through its *to*
            endpoint and the person has no *from* part yet, attach the *from* part too.
            The reference only ever attaches the *to* endpoint (False).
        max_candidate_pairs: refuse (InputError naming the count) maps whose peaks give
            more candidate limb pairs than this, summed over limbs, before any is scored.
            A memory bound (about 40 bytes a pair); real images need a few thousand.
        max_candidate_samples: likewise for pairs x ``limb_max_samples`` (a time bound:
            1e8 samples take about a second).
        limb_length_outlier: 0 (off) or R: after assembly, each part is given its *via*
            limb, the limb that attaches it to a tree of the person's parts grown from the
            first limb (processing order) joining two of them (passes over the limbs in order
            attach each part not yet reached through a limb to a reached one). Via-limb
            lengths (original px) divided by ``limb_length_priors`` estimate the person's
            scale; a part whose normalised length is > R x their median is removed with every
            part hanging from it (persons with < 3 via limbs are left alone). It cuts limbs
            borrowed from a person of another size, e.g. a small background skeleton reaching
            into a foreground arm.
        limb_length_priors: one per limb of the layout (same order), the limb's typical
            length relative to the others (dimensionless); empty means all 1.
    """

    peak_threshold: float = 0.1
    max_peaks_per_part: int = 64
    limb_sample_threshold: float = 0.1
    limb_pass_ratio: float = 0.8
    limb_max_samples: int = 20
    length_prior: bool = True
    limb_length_rate: float = 16.0
    merge_tolerance: float = 0.7
    priority_weights: tuple[float, float, float] = (0.5, 0.25, 0.25)
    min_parts: int = 2
    min_mean_score: float = 0.45
    person_score: str = "mean"
    attach_from_end: bool = True
    max_candidate_pairs: int = 1_000_000
    max_candidate_samples: int = 100_000_000
    limb_length_outlier: float = 0.0
    limb_length_priors: tuple[float, ...] = ()

    def __post_init__(self):
        for f in fields(self):
            object.__setattr__(self, f.name, _coerce(f.name, f.type, getattr(self, f.name)))
        self.validate()
        # what the binding receives on every call, built once (the fields are immutable)
        object.__setattr__(self, "_as_dict", {f.name: getattr(self, f.name) for f in fields(self)})

    def validate(self) -> None:
        """Raise InputError naming the first invalid field."""
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name in ("priority_weights", "limb_length_priors"):
                for i, w in enumerate(v):
                    check_bound(w, f.name, f"GroupingParams.{f.name}[{i}]")
            elif f.name in BOUNDS:
                check_bound(v, f.name, f"GroupingParams.{f.name}")
        if self.person_score not in PERSON_SCORE_MODES:
            raise InputError(
                f"GroupingParams.person_score must be one of {PERSON_SCORE_MODES}, "
                f"got {self.person_score!r}"
            )

    def to_dict(self) -> dict:
        """The fields as a new dict (the form the C++ binding takes)."""
        return dict(self._as_dict)

    def replace(self, **changes) -> GroupingParams:
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise InputError(f"unknown GroupingParams field(s): {', '.join(sorted(unknown))}")
        return replace(self, **changes)


def _coerce(name: str, kind: str, value):
    """A field value in its declared type (numpy scalars, int for float, list for tuple), or
    InputError naming the field. ``kind`` is the annotation string (postponed annotations)."""
    what = f"GroupingParams.{name}"
    if kind == "bool":
        if isinstance(value, bool) or type(value).__name__ in ("bool_", "bool"):  # numpy too
            return bool(value)
        raise InputError(f"{what} must be True or False, got {value!r}")
    if kind == "str":
        if isinstance(value, str):
            return value
        raise InputError(f"{what} must be a string, got {value!r}")
    if kind == "int":
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            return int(value)
        raise InputError(f"{what} must be an integer, got {value!r}")
    if kind == "float":
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            return float(value)
        raise InputError(f"{what} must be a number, got {value!r}")
    # priority_weights (three numbers) or limb_length_priors (one per limb, or none)
    if name == "priority_weights":
        ok, expected = (
            hasattr(value, "__len__") and len(value) == 3,
            "3 numbers (limb, from-peak, to-peak weights)",
        )
    else:
        ok, expected = hasattr(value, "__len__"), "a tuple of numbers, one per limb (or empty)"
    if isinstance(value, (str, bytes)) or not ok:
        raise InputError(f"{what} must be {expected}, got {value!r}")
    return tuple(_coerce(f"{name}[{i}]", "float", w) for i, w in enumerate(value))


# The original SimplePose evaluate.py behaviour, for parity studies.
REFERENCE_SIMPLEPOSE = GroupingParams(
    max_peaks_per_part=BOUNDS["max_peaks_per_part"][1],  # unlimited in the original
    person_score="one_minus_inv_total",
    attach_from_end=False,
)
