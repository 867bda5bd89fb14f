"""Video: pose tracking, temporal smoothing, optical-flow propagation and the real-time mode.

    from simplepose.tracking import Tracker, track_frames
    tracker = Tracker()
    people = tracker.update(predictor.predict(frame), frame_index)   # list[TrackedPerson]
    for out in track_frames(predictor, frames, realtime=True):       # TrackedFrame per frame
        ...

* :mod:`.tracker`: :class:`Tracker` (SORT/ByteTrack-style association on OKS + box IoU) and
  :class:`TrackerParams`.
* :mod:`.smoothing`: the One-Euro filter.
* :mod:`.flow`: pyramidal Lucas-Kanade keypoint propagation.
* :mod:`.realtime`: :func:`track_frames`, keyframes in a worker + flow in between.

Only numpy, scipy and OpenCV are needed here (no torch).
"""

from .flow import FlowFrame, FlowParams, propagate_keypoints, propagate_points
from .realtime import LatestFrameReader, TrackedFrame, VideoTracker, track_frames
from .smoothing import OneEuroFilter, OneEuroParams
from .tracker import TrackedPerson, Tracker, TrackerParams

__all__ = [
    "FlowFrame",
    "FlowParams",
    "LatestFrameReader",
    "OneEuroFilter",
    "OneEuroParams",
    "TrackedFrame",
    "TrackedPerson",
    "Tracker",
    "TrackerParams",
    "VideoTracker",
    "propagate_keypoints",
    "propagate_points",
    "track_frames",
]
