"""The One-Euro filter (Casiez, Roussel and Vogel, CHI 2012), vectorised over arrays.

For each scalar signal x sampled at times t_i (period T_e = t_i - t_{i-1}):

    alpha(f_c)  = 1 / (1 + tau / T_e),   tau = 1 / (2 pi f_c)
    dx_i        = (x_i - xhat_{i-1}) / T_e
    dxhat_i     = alpha(d_cutoff) dx_i + (1 - alpha(d_cutoff)) dxhat_{i-1}
    f_c         = min_cutoff + beta |dxhat_i|
    xhat_i      = alpha(f_c) x_i + (1 - alpha(f_c)) xhat_{i-1}

with ``xhat_0 = x_0`` and ``dxhat_0 = 0``. A slow signal is smoothed hard (cut-off near
``min_cutoff``, removing jitter); a fast one gets a high cut-off (little lag).

Pose tracks use one filter state per keypoint coordinate (:class:`OneEuroFilter` over a
(K, 2) array). A keypoint that goes missing is reset and starts afresh when it comes back, so
an old position never leaks into a new one. ``scale`` divides the speed before it reaches
``beta`` so that one ``beta`` suits near and far people (speed in person sizes per second);
``scale=1`` is the textbook filter. ``shift`` moves the previous estimate by a motion known
from elsewhere before the update (the tracker uses the person's robust translation between
frames), so that a person carried by a panning camera is smoothed without lagging behind.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import InputError

__all__ = ["OneEuroFilter", "OneEuroParams", "smoothing_factor"]


def smoothing_factor(cutoff, period):
    """``alpha = 1 / (1 + tau / T_e)`` with ``tau = 1 / (2 pi cutoff)`` (Hz, s)."""
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff, dtype=np.float64))
    return 1.0 / (1.0 + tau / period)


@dataclass(frozen=True)
class OneEuroParams:
    """One-Euro filter parameters.

    Attributes:
        min_cutoff: cut-off frequency (Hz) of a still signal; lower = smoother, more lag.
        beta: speed coefficient; higher = less lag on fast motion (per unit of speed: px/s,
            or scale units/s when a ``scale`` is passed).
        d_cutoff: cut-off frequency (Hz) of the low-pass on the derivative.
    """

    min_cutoff: float = 1.0
    beta: float = 0.0
    d_cutoff: float = 1.0

    def __post_init__(self):
        for name in ("min_cutoff", "d_cutoff"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise InputError(
                    f"OneEuroParams.{name} must be a finite number > 0 (Hz), got {value!r}"
                )
        if not (
            isinstance(self.beta, (int, float)) and math.isfinite(self.beta) and self.beta >= 0
        ):
            raise InputError(f"OneEuroParams.beta must be a finite number >= 0, got {self.beta!r}")


class OneEuroFilter:
    """One-Euro filter over arrays of a fixed shape; every element is its own signal.

    Args:
        params: :class:`OneEuroParams`.
        shape: shape of the filtered arrays, e.g. ``(17, 2)`` keypoint x, y.
    """

    def __init__(self, params: OneEuroParams | None = None, shape=(1,)):
        self.params = params or OneEuroParams()
        self.shape = tuple(shape)
        self.x = np.zeros(self.shape)  # last output xhat
        self.dx = np.zeros(self.shape)  # last derivative estimate dxhat
        self.active = np.zeros(self.shape, dtype=bool)  # has a state
        self.t: np.ndarray = np.zeros(self.shape)  # time of the last sample per element

    def reset(self, mask=None) -> None:
        """Forget the state of every element (or of those where ``mask`` is True)."""
        if mask is None:
            self.active[:] = False
        else:
            self.active &= ~np.broadcast_to(np.asarray(mask, dtype=bool), self.shape)

    def __call__(self, x, t: float, present=None, scale: float = 1.0, shift=None) -> np.ndarray:
        """Filter one sample.

        Args:
            x: array of :attr:`shape` (e.g. keypoint px).
            t: sample time in seconds; must increase between calls for an element.
            present: bool array broadcastable to :attr:`shape`; absent elements are reset
                and returned unchanged (they restart from their next present sample).
            scale: speed divisor applied before ``beta`` (e.g. the person's size in px).
            shift: motion known by other means (broadcastable to :attr:`shape`), added to the
                previous estimate before filtering (a prediction step): the filter then
                smooths the deviation from that motion, with no lag on it. None = textbook.

        Returns:
            The filtered array (a new array).
        """
        x = np.asarray(x, dtype=np.float64)
        if x.shape != self.shape:
            raise InputError(
                f"OneEuroFilter: expected an array of shape {self.shape}, got {x.shape}"
            )
        mask = (
            np.ones(self.shape, bool)
            if present is None
            else np.broadcast_to(np.asarray(present, bool), self.shape)
        )
        mask = mask & np.isfinite(x)
        p = self.params
        out = x.copy()
        fresh = mask & ~self.active
        run = mask & self.active
        if shift is not None:
            self.x = np.where(
                self.active,
                self.x + np.broadcast_to(np.asarray(shift, dtype=np.float64), self.shape),
                self.x,
            )
        if run.any():
            period = np.maximum(t - self.t[run], 1e-9)
            dx = (x[run] - self.x[run]) / period
            a_d = smoothing_factor(p.d_cutoff, period)
            dxhat = a_d * dx + (1 - a_d) * self.dx[run]
            cutoff = p.min_cutoff + p.beta * np.abs(dxhat) / max(float(scale), 1e-9)
            a = smoothing_factor(cutoff, period)
            out[run] = a * x[run] + (1 - a) * self.x[run]
            self.dx[run] = dxhat
        self.x[mask] = out[mask]
        self.dx[fresh] = 0.0
        self.t[mask] = t
        self.active = mask.copy()
        return out
