"""Parameters of the bottom-up keypoint assignment (grouping), defined once for the C++
implementation and the Python reference.

Defaults are SimplePose's (SPEC 3.9); the fields marked "clean" replace a reference quirk
and have a ``reference`` value selectable for parity with the original post-processing.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace

from ..errors import InputError

__all__ = ["GroupingParams", "REFERENCE_SIMPLEPOSE", "PERSON_SCORE_MODES"]

PERSON_SCORE_MODES = ("mean", "one_minus_inv_total")


@dataclass(frozen=True)
class GroupingParams:
    """Thresholds of peak finding, limb scoring and person assembly.

    Lengths are in original-image px; map values are in the network's [0, 1] units.

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

    def __post_init__(self):
        object.__setattr__(self, "priority_weights", tuple(float(w) for w in self.priority_weights))
        self.validate()

    def validate(self) -> None:
        """Raise InputError naming the first invalid field."""
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, float) and not math.isfinite(v):
                raise InputError(f"GroupingParams.{f.name} must be finite, got {v}")
        if len(self.priority_weights) != 3 or not all(math.isfinite(w) for w in self.priority_weights):
            raise InputError(f"GroupingParams.priority_weights must be 3 finite numbers, got {self.priority_weights}")
        if self.max_peaks_per_part < 1:
            raise InputError(f"GroupingParams.max_peaks_per_part must be >= 1, got {self.max_peaks_per_part}")
        if not 2 <= self.limb_max_samples <= 10_000:
            raise InputError(f"GroupingParams.limb_max_samples must be in [2, 10000], got {self.limb_max_samples}")
        if self.min_parts < 1:
            raise InputError(f"GroupingParams.min_parts must be >= 1, got {self.min_parts}")
        if self.person_score not in PERSON_SCORE_MODES:
            raise InputError(f"GroupingParams.person_score must be one of {PERSON_SCORE_MODES}, got {self.person_score!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    def replace(self, **changes) -> "GroupingParams":
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise InputError(f"unknown GroupingParams field(s): {', '.join(sorted(unknown))}")
        return replace(self, **changes)


# The original SimplePose evaluate.py behaviour, for parity studies.
REFERENCE_SIMPLEPOSE = GroupingParams(
    max_peaks_per_part=1_000_000,
    person_score="one_minus_inv_total",
    attach_from_end=False,
)
