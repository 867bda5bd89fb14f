"""What ``demo.py`` runs: images / folders / videos / webcams -> people -> drawn output + JSON.

* :mod:`.sources`: :func:`open_source` (image file, image folder, video file, ``webcam:N``);
* :mod:`.sinks`: annotated images / videos, the per-frame people JSON, output checks;
* :mod:`.pipeline`: :func:`open_run` (source + predictor, checked first), :func:`run_demo`, the
  threaded video pipeline and its :class:`InferenceStages`.
"""

from .pipeline import (
    STAGES,
    DemoReport,
    InferenceStages,
    auto_workers,
    build_predictor,
    open_run,
    run_demo,
)
from .sinks import people_to_json, plan_outputs
from .sources import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, FrameSource, open_source

__all__ = [
    "IMAGE_EXTENSIONS",
    "STAGES",
    "VIDEO_EXTENSIONS",
    "DemoReport",
    "FrameSource",
    "InferenceStages",
    "auto_workers",
    "build_predictor",
    "open_run",
    "open_source",
    "people_to_json",
    "plan_outputs",
    "run_demo",
]
