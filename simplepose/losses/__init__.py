"""Training losses.

* :class:`MultiScaleFocalL2Loss` -- SimplePose / IMHN multi-scale focal L2 (SPEC 3.6).
"""

from simplepose.losses.focal_l2 import SCALE_WEIGHTS, MultiScaleFocalL2Loss, focal_l2_per_stack

__all__ = ["SCALE_WEIGHTS", "MultiScaleFocalL2Loss", "focal_l2_per_stack"]
