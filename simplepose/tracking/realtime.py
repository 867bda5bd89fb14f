"""Tracked video: :func:`track_frames` runs a pose model over frames and yields tracked people.

Two modes:

* **Every frame** (default): the model runs on each frame; optical flow carries the last
  frame's tracks to this one (and estimates the camera motion), which predicts where each
  track is; then the :class:`~simplepose.tracking.tracker.Tracker` associates, assigns ids
  and smooths.
* **Real time** (``realtime=True``): the model runs on *keyframes* in its own worker thread,
  as fast as it can; the frames in between are carried by sparse optical flow
  (:mod:`~simplepose.tracking.flow`) from the last frame's tracked keypoints, and each
  keyframe's detections correct the tracks. The output rate is then set by reading, flow
  and drawing, not by the network.

  - From a file (``live=False``) frames are held until the keyframe before them is
    detected, so every keyframe's detections apply at their own frame and the frames after
    it are carried forward from there (exact corrections, a latency of about one network
    call). When ``keyframe_interval`` frames are waiting, reading pauses until the network
    is done: this bounds how far flow must carry a pose.
  - From a camera (``live=True``) every frame is output at once: a keyframe's result, which
    arrives a few frames late, is brought to the current frame by one optical-flow step
    from its own frame. The frames come from :class:`LatestFrameReader`, which always hands
    over the newest frame and drops stale ones, so latency stays bounded.

  ``sync=True`` replaces the worker by an inline call on every ``keyframe_interval``-th
  frame: the same keyframes on every run, for tests and accuracy measurements.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..structures import Person
from .flow import FlowFrame, FlowParams, estimate_camera_motion, propagate_keypoints
from .tracker import TrackedPerson, Tracker, TrackerParams, _is_keypoint_box, _keypoint_box

__all__ = ["KEYFRAME_INTERVAL", "LatestFrameReader", "TrackedFrame", "VideoTracker", "track_frames"]

LOG = logging.getLogger(__name__)

#: Default most frames per keyframe on a file. From bench/video.py (4 x 40 synthetic 640x480
#: frames, the bundled model at its input 432, keyframes on a fixed schedule): COCO AP 0.303
#: with the network on every frame (0.308 tracked); real time with 2 / 3 / 4 / 5 / 6 / 8 frames
#: per keyframe: 0.290 / 0.283 / 0.280 / 0.260 / 0.252 / 0.245. The bench's own run (keyframes
#: as fast as the network goes): 4 gives AP -0.023 at 3.5x the speed, 5 gives -0.039 at 4.3x;
#: 5 keeps both inside the issue's bars (-0.05 AP, 3x) with room for a slower CPU.
KEYFRAME_INTERVAL = 5


@dataclass
class TrackedFrame:
    """One output frame.

    Attributes:
        index: the frame's index in its source (gaps where a live source dropped frames).
        image: the BGR uint8 frame.
        people: tracked people in this frame's px.
        keyframe: True when the network's detections were applied at this frame.
        timestamp: seconds: ``index / fps`` for files, time since the start for live sources.
        dropped: frames a live source dropped before this one (0 for files).
    """

    index: int
    image: np.ndarray
    people: list[TrackedPerson]
    keyframe: bool = True
    timestamp: float = 0.0
    dropped: int = 0


class LatestFrameReader:
    """Reads frames in a background thread and always hands over the newest one.

    Iterating yields ``(index, frame, dropped)``: the frame's index in the source, the frame,
    and how many frames were dropped since the previous one handed over. Iteration ends when
    the source ends; an exception in the source is re-raised in the consumer.

    Args:
        frames: an iterable of frames (e.g. a camera read loop).
    """

    def __init__(self, frames: Iterable[np.ndarray]):
        self._frames = frames
        self._cond = threading.Condition()
        self._latest: tuple[int, np.ndarray] | None = None
        self._done = False
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._read = 0
        self._thread = threading.Thread(target=self._run, name="latest-frame-reader", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for index, frame in enumerate(self._frames):
                if self._stop.is_set():
                    break
                with self._cond:
                    self._latest = (index, frame)
                    self._read = index + 1
                    self._cond.notify_all()
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            self._error = exc
        finally:
            with self._cond:
                self._done = True
                self._cond.notify_all()

    def __iter__(self) -> Iterator[tuple[int, np.ndarray, int]]:
        last = -1
        try:
            while True:
                with self._cond:
                    while self._latest is None and not self._done:
                        self._cond.wait(0.1)
                    item, self._latest = self._latest, None
                    done, error = self._done, self._error
                if item is None:
                    if error is not None:
                        raise error
                    if done:
                        return
                    continue
                index, frame = item
                yield index, frame, index - last - 1
                last = index
        finally:
            self.close()

    def close(self) -> None:
        """Stop reading and wait (briefly) for the reading thread, so the source can be closed."""
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)


class _Worker:
    """Runs ``predict`` on one submitted frame at a time in a thread."""

    def __init__(self, predict: Callable[[np.ndarray], list[Person]]):
        self._predict = predict
        self._cond = threading.Condition()
        self._request: tuple[int, np.ndarray] | None = None
        self._result: tuple[int, list[Person], float] | None = None
        self._error: BaseException | None = None
        self._closed = False
        self.busy = False
        self._thread = threading.Thread(target=self._run, name="keyframe-worker", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._request is None and not self._closed:
                    self._cond.wait(0.1)
                if self._closed:
                    return
                index, frame = self._request
                self._request = None
            try:
                t0 = time.perf_counter()
                people = self._predict(frame)
                result = (index, people, time.perf_counter() - t0)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                with self._cond:
                    self._error = exc
                    self._cond.notify_all()
                return
            with self._cond:
                self._result = result
                self._cond.notify_all()

    def submit(self, index: int, frame: np.ndarray) -> None:
        with self._cond:
            self.busy = True
            self._request = (index, frame)
            self._cond.notify_all()

    def poll(self, wait: bool = False):
        """``(index, people, seconds)`` of the finished keyframe, or None (waits if asked)."""
        with self._cond:
            while wait and self._result is None and self._error is None:
                self._cond.wait(0.1)
            if self._error is not None:
                raise self._error
            result, self._result = self._result, None
            if result is not None:
                self.busy = False
            return result

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=10.0)


@dataclass
class _Pending:
    index: int
    image: np.ndarray
    flow: FlowFrame
    dropped: int = 0
    timestamp: float = 0.0


@dataclass
class RealtimeStats:
    """Counters of a real-time run: frames out, keyframes, network seconds, dropped frames."""

    frames: int = 0
    keyframes: int = 0
    network_s: float = 0.0
    flow_s: float = 0.0
    dropped: int = 0


class VideoTracker:
    """Optical flow + tracker over a video, with the network on every frame or on keyframes.

    :meth:`step` takes one frame and (optionally) its detections, for callers that run the
    network themselves (the demo's threaded pipeline); :meth:`run` runs ``predict`` itself,
    on keyframes in a worker thread (see the module docstring).

    Args:
        predict: ``image -> list[Person]`` (e.g. ``Predictor.predict``).
        params: :class:`~simplepose.tracking.tracker.TrackerParams`.
        flow: :class:`~simplepose.tracking.flow.FlowParams`.
        keyframe_interval: files: most frames held waiting for one keyframe (>= 1); with
            ``sync`` the exact keyframe spacing.
        live: a camera-like source: output each frame at once (see the module docstring).
        sync: run the network inline on every ``keyframe_interval``-th frame (deterministic).
        fps: the source's frame rate (timestamps of file frames).
        kpt_threshold: keypoints scored at or below this are not carried by flow.
        camera_motion: estimate the global image motion between frames and move every track
            with it (lost tracks then follow a panning camera and are found again).
        min_carried: a person is carried to the next frame only when the flow keeps at least
            this fraction of their keypoints.
        layout: the people's keypoint layout (see :class:`~simplepose.tracking.Tracker`);
            None: from their keypoint count.
        live_timestamps: timestamp frames by the clock (s since the start) as ``live`` does,
            also with ``sync`` (a camera run with the network on every frame).
    """

    def __init__(
        self,
        predict: Callable,
        params: TrackerParams | None = None,
        flow: FlowParams | None = None,
        keyframe_interval: int = KEYFRAME_INTERVAL,
        live: bool = False,
        sync: bool = False,
        fps: float = 25.0,
        kpt_threshold: float = 0.0,
        camera_motion: bool = True,
        min_carried: float = 0.5,
        layout=None,
        live_timestamps: bool = False,
    ):
        if (
            isinstance(keyframe_interval, bool)
            or not isinstance(keyframe_interval, int)
            or keyframe_interval < 1
        ):
            raise InputError(
                f"keyframe_interval must be an integer >= 1, got {keyframe_interval!r}"
            )
        if not (np.isfinite(fps) and fps > 0):
            raise InputError(f"fps must be > 0, got {fps!r}")
        if live and sync:
            raise InputError("a live source cannot run with sync=True (it would stall the camera)")
        self.predict = predict
        self.tracker = Tracker(params or TrackerParams(fps=fps), layout=layout)
        self.flow_params = flow or FlowParams()
        self.interval = keyframe_interval
        self.live = live
        self.sync = sync
        self.fps = float(fps)
        self.kpt_threshold = kpt_threshold
        self.camera_motion = camera_motion
        if not 0.0 <= min_carried <= 1.0:
            raise InputError(f"min_carried must be in [0, 1], got {min_carried!r}")
        self.min_carried = float(min_carried)
        self.live_timestamps = live or live_timestamps
        self.stats = RealtimeStats()
        self._prev: FlowFrame | None = None
        self._size: tuple[int, int] | None = None

    # ------------------------------------------------------------------ one frame's steps
    def _flow_frame(self, index: int, image: np.ndarray) -> FlowFrame:
        """The frame's :class:`FlowFrame`; InputError unless it is a BGR uint8 image of the
        earlier frames' size."""
        if not isinstance(image, np.ndarray) or image.ndim != 3 or image.dtype != np.uint8:
            raise InputError(
                f"frame {index} is not a BGR uint8 (H, W, 3) image: "
                f"{getattr(image, 'shape', type(image).__name__)}"
            )
        t0 = time.perf_counter()
        ff = FlowFrame.from_image(image)
        if self._size is not None and ff.size != self._size:
            raise InputError(
                f"frame {index} is {ff.size[0]}x{ff.size[1]} but the earlier frames are "
                f"{self._size[0]}x{self._size[1]}"
            )
        self._size = ff.size
        self.stats.flow_s += time.perf_counter() - t0
        return ff

    def _move(self, people, src: FlowFrame, dst: FlowFrame) -> list:
        """People moved by flow from ``src`` to ``dst`` (same type and ids)."""
        if not people:
            return []
        t0 = time.perf_counter()
        before = np.stack([np.asarray(p.keypoints, dtype=np.float64) for p in people])
        moved = propagate_keypoints(src, dst, before, self.kpt_threshold, self.flow_params)
        out = []
        for p, b, k in zip(people, before, moved):
            if (k[:, 2] > self.kpt_threshold).sum() < max(
                1, self.min_carried * int((b[:, 2] > self.kpt_threshold).sum())
            ):
                continue  # the flow lost most of this person: do not carry a fragment
            kept = k[:, 2] > 0  # a kept keypoint was present before (flow keeps its score)
            if _is_keypoint_box(p.box, b):
                box = _keypoint_box(k)  # a keypoint box follows the keypoints
            else:  # a detector's box moves with the keypoints' mean displacement
                box = np.asarray(p.box, float)
                if kept.any():
                    box = box + np.tile(k[kept, :2].mean(0) - b[kept, :2].mean(0), 2)
            if isinstance(p, TrackedPerson):
                out.append(TrackedPerson(
                    keypoints=k, score=p.score, box=box, track_id=p.track_id, carried=True
                ))  # fmt: skip
            else:
                out.append(Person(keypoints=k, score=p.score, box=box))
        self.stats.flow_s += time.perf_counter() - t0
        return out

    def step(self, index: int, image: np.ndarray, detections=None) -> list[TrackedPerson]:
        """Track one frame: carry the tracks to ``image`` by flow, then apply ``detections``
        (a list of :class:`~simplepose.structures.Person`, or None on a frame without)."""
        return self._step(index, self._flow_frame(index, image), detections)

    def _step(self, index: int, ff: FlowFrame, detections=None) -> list[TrackedPerson]:
        """Carry the tracks from the previous frame to this one, then apply detections."""
        carried, camera = {}, None
        if self._prev is not None:
            carried = {p.track_id: p for p in self._move(self.tracker.active(), self._prev, ff)}
            if self.camera_motion and self.tracker.tracks:
                t0 = time.perf_counter()
                camera = estimate_camera_motion(self._prev, ff)
                self.stats.flow_s += time.perf_counter() - t0
        self._prev = ff
        if detections is None:
            return self.tracker.carry(carried, index, camera)
        return self.tracker.update(detections, index, carried, camera)

    # ------------------------------------------------------------------ the loops
    def run(self, frames: Iterable) -> Iterator[TrackedFrame]:
        """Yield a :class:`TrackedFrame` per frame.

        Args:
            frames: images, or ``(index, image, dropped)`` tuples (what
                :class:`LatestFrameReader` yields).
        """
        if self.sync:
            yield from self._run_sync(frames)
            return
        worker = _Worker(self.predict)
        try:
            if self.live:
                yield from self._run_live(frames, worker)
            else:
                yield from self._run_buffered(frames, worker)
        finally:
            worker.close()

    def _frames(self, frames):
        start = time.perf_counter()
        for n, item in enumerate(frames):
            index, image, dropped = item if isinstance(item, tuple) else (n, item, 0)
            stamp = (
                time.perf_counter() - start
                if self.live_timestamps
                else index / self.fps
            )
            yield _Pending(index, image, self._flow_frame(index, image), dropped, stamp)

    def _emit(self, pending: _Pending, people, keyframe: bool) -> TrackedFrame:
        self.stats.frames += 1
        self.stats.dropped += pending.dropped
        return TrackedFrame(
            pending.index, pending.image, people, keyframe, pending.timestamp, pending.dropped
        )

    def _keyframe_done(self, result) -> list[Person]:
        _, people, seconds = result
        self.stats.keyframes += 1
        self.stats.network_s += seconds
        return people

    def _run_sync(self, frames) -> Iterator[TrackedFrame]:
        for n, pending in enumerate(self._frames(frames)):
            detections = None
            if n % self.interval == 0:
                t0 = time.perf_counter()
                detections = self._keyframe_done(
                    (pending.index, self.predict(pending.image), time.perf_counter() - t0)
                )
            yield self._emit(
                pending, self._step(pending.index, pending.flow, detections), detections is not None
            )

    def _run_buffered(self, frames, worker) -> Iterator[TrackedFrame]:
        held: collections.deque[_Pending] = collections.deque()  # held[0] is the submitted keyframe

        def release(result) -> Iterator[TrackedFrame]:
            people = self._keyframe_done(result)
            key = held.popleft()
            if held:  # the newest held frame is the next keyframe; the ones before it are carried
                worker.submit(held[-1].index, held[-1].image)
            yield self._emit(key, self._step(key.index, key.flow, people), True)
            while len(held) > 1:
                p = held.popleft()
                yield self._emit(p, self._step(p.index, p.flow), False)

        broken = None
        try:
            for pending in self._frames(frames):
                held.append(pending)
                if not worker.busy:
                    worker.submit(pending.index, pending.image)
                    continue
                result = worker.poll(wait=len(held) > self.interval)
                if result is not None:
                    yield from release(result)
        except InputError as exc:  # a broken stream: output the frames already read, then report
            broken = exc
        while held:
            if not worker.busy:
                worker.submit(held[0].index, held[0].image)
            yield from release(worker.poll(wait=True))
        if broken is not None:
            raise broken

    def _run_live(self, frames, worker) -> Iterator[TrackedFrame]:
        submitted: _Pending | None = None
        for pending in self._frames(frames):
            detections = None
            result = worker.poll() if submitted is not None else None
            if result is not None:
                people = self._keyframe_done(result)
                detections = (
                    self._move(people, submitted.flow, pending.flow)
                    if submitted.index != pending.index
                    else people
                )
                submitted = None
            out = self._step(pending.index, pending.flow, detections)
            if submitted is None:
                worker.submit(pending.index, pending.image)
                submitted = pending
            yield self._emit(pending, out, detections is not None)


def layout_of(predictor):
    """The keypoint layout of a predictor's people (its ``spec.keypoints``), or None when it
    has no spec (the tracker then takes the layout from the people's keypoint count)."""
    return getattr(getattr(predictor, "spec", None), "keypoints", None)


def track_frames(
    predictor,
    frames: Iterable,
    params: TrackerParams | None = None,
    realtime: bool = False,
    keyframe_interval: int = KEYFRAME_INTERVAL,
    live: bool = False,
    sync: bool = False,
    fps: float = 25.0,
    flow: FlowParams | None = None,
    camera_motion: bool = True,
    layout=None,
) -> Iterator[TrackedFrame]:
    """Run a pose model over frames and yield tracked people, frame by frame.

    Args:
        predictor: a :class:`~simplepose.Predictor`, or any object with ``predict(image)``
            returning :class:`~simplepose.structures.Person` lists.
        frames: BGR uint8 images in order (any iterable; a generator reading a video is fine).
        params: :class:`~simplepose.tracking.tracker.TrackerParams` (default: ``fps`` set from
            ``fps``).
        realtime: keyframes + optical flow (see the module docstring) instead of the network
            on every frame.
        keyframe_interval: real time: most frames carried by flow per keyframe (files), or
            the exact spacing with ``sync``.
        live: real time: frames come from a camera; read them in a background thread and
            always process the newest (stale frames are dropped).
        sync: real time: run the network inline on fixed keyframes (deterministic).
        fps: the source's frame rate (timestamps; the smoother's time base).
        flow: :class:`~simplepose.tracking.flow.FlowParams`.
        camera_motion: compensate the global image motion (see :class:`VideoTracker`).
        layout: the people's keypoint layout; default: the predictor's ``spec.keypoints``
            when it has one, else from the people's keypoint count.

    Yields:
        :class:`TrackedFrame` per output frame.
    """
    params = params or TrackerParams(fps=fps)
    if layout is None:
        layout = layout_of(predictor)
    if realtime:
        engine = VideoTracker(
            predictor.predict,
            params,
            flow,
            keyframe_interval,
            live,
            sync,
            fps,
            camera_motion=camera_motion,
            layout=layout,
        )
        yield from engine.run(LatestFrameReader(frames) if live else frames)
        return
    # every frame: the same engine with a keyframe on each frame (flow then only predicts
    # where the tracks are, for the association); live sources still drop stale frames
    engine = VideoTracker(
        predictor.predict,
        params,
        flow,
        1,
        sync=True,
        fps=fps,
        camera_motion=camera_motion,
        layout=layout,
        live_timestamps=live,
    )
    yield from engine.run(LatestFrameReader(frames) if live else frames)
