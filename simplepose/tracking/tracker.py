"""Multi-person pose tracking: per-frame people in, people with stable ``track_id`` out.

The design follows the SORT family of trackers (SORT, ByteTrack, OC-SORT), with a cost made
for poses:

* **Motion.** Each track predicts its keypoints and box with a constant velocity per
  keypoint (an exponential average of the measured velocities; keypoints without their own
  velocity use the track's mean). While a track is unmatched its velocity decays and its
  position uncertainty grows, as a Kalman filter's would. When the caller has the frames it
  can do better (:class:`~simplepose.tracking.realtime.VideoTracker` does): poses carried
  from the previous frame by optical flow join the prediction (``carried``), and the camera's
  motion moves every track, lost ones included (``camera``, as in BoT-SORT).
* **Association.** The similarity of a track and a detection is
  ``(1 - iou_weight) * OKS + iou_weight * IoU`` of the track's pose and box with the detected
  ones, the best over three hypotheses of where the track is now: its pose carried by flow, its
  motion prediction and its last observation (all moved by the camera). OKS uses the layout's
  sigmas (:func:`~simplepose.skeleton.similarity_sigmas`) and the person's size: the track's
  area from its last measurement with enough keypoints (a person half out of the frame is not
  smaller), enlarged by its uncertainty; a detection with few keypoints is compared at the
  track's size. The optimal assignment is scipy's ``linear_sum_assignment`` on
  ``1 - similarity``; pairs below ``min_similarity`` are not matched.
* **Two passes (ByteTrack).** People scored >= ``high_score`` are matched to the confirmed
  tracks first (lost ones included: a track unmatched for up to ``max_age`` rounds is
  re-identified when its person comes back near the prediction); people scored in
  [``low_score``, ``high_score``) are then matched to the confirmed tracks still free (a
  low-score person never starts a track); finally, remaining high-score people are matched to
  tentative tracks, and those left start new tentative tracks.
* **Birth and death.** A tentative track is confirmed, and gets its id, after ``min_hits``
  matches (during the first ``min_hits`` rounds every match is confirmed at once, so a
  sequence's first frames are not lost). A tentative track is dropped at its first miss; a
  confirmed one after ``max_age`` rounds without a match.
* **Smoothing.** Each track keeps a :class:`~simplepose.tracking.smoothing.OneEuroFilter` per
  keypoint coordinate (speed measured in person heights per second), run on positions
  compensated for the person's median displacement, so the whole-body motion is not delayed;
  a keypoint that vanishes restarts its filter when it comes back. Output keypoints are the
  model's (low-score ones included, never dropped), smoothed.

Coordinates are whatever pixel frame the people are given in (usually original-image px).
NaN/inf keypoints from a model are dropped (set missing) with a warning; a person whose score
is not finite is dropped.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, fields

import numpy as np

from ..decode.nms import oks_iou
from ..errors import InputError
from ..geometry import apply_affine, box_iou
from ..skeleton import get_layout, similarity_sigmas, similarity_sigmas_for
from ..structures import Person
from .smoothing import OneEuroFilter, OneEuroParams

__all__ = ["TrackedPerson", "Tracker", "TrackerParams"]

LOG = logging.getLogger(__name__)

@dataclass
class TrackedPerson(Person):
    """A :class:`~simplepose.structures.Person` with a stable track id.

    Attributes:
        track_id: integer id, stable over the frames in which the tracker follows the person
            (ids start at 1 and are never reused).
        carried: True when the pose was carried from earlier frames (optical flow in the
            real-time mode) rather than detected in this frame.
    """

    track_id: int = 0
    carried: bool = False


@dataclass(frozen=True)
class TrackerParams:
    """Tracker settings (validated on construction; errors name the parameter).

    Attributes:
        high_score: people scored at least this are matched first and may start tracks.
        low_score: people scored below this are ignored; between the two they can only
            extend an existing confirmed track (ByteTrack's second pass).
        min_similarity: smallest similarity (0-1) that may match a track and a person.
        iou_weight: weight of box IoU against OKS in the similarity (0: OKS only).
        kpt_threshold: keypoints scored at or below this count as missing for the tracker.
        min_hits: matches before a tentative track is confirmed and output (birth).
        max_age: rounds without a match before a confirmed track is deleted (death); up to
            then a returning person gets their old id back (re-identification).
        velocity_weight: weight of the newest measured velocity in its exponential average.
        velocity_decay: factor applied to a track's velocity for each round it is unmatched.
        uncertainty_growth: relative growth per unmatched round of the track's area in OKS.
        keypoint_memory: rounds a keypoint the detector stops seeing is still predicted for
            matching (it is never output).
        smoothing: run the One-Euro filter on output keypoints.
        motion_compensation: shift each track's filter state by the person's median keypoint
            displacement before filtering, so whole-body motion (walking, camera pans) is not
            delayed and only the articulation is smoothed.
        smoother: :class:`~simplepose.tracking.smoothing.OneEuroParams`; ``beta`` is per
            person height per second.
        fps: frame rate used to turn frame indices into seconds for the filter.
        max_carry: rounds a confirmed track that the detector missed is still output when it
            is carried by optical flow (real-time mode).
    """

    high_score: float = 0.3
    low_score: float = 0.1
    min_similarity: float = 0.2
    iou_weight: float = 0.3
    kpt_threshold: float = 0.05
    min_hits: int = 2
    max_age: int = 30
    velocity_weight: float = 0.5
    velocity_decay: float = 0.8
    uncertainty_growth: float = 0.3
    keypoint_memory: int = 5
    smoothing: bool = True
    motion_compensation: bool = True
    smoother: OneEuroParams = field(
        default_factory=lambda: OneEuroParams(min_cutoff=1.0, beta=0.5, d_cutoff=1.0)
    )
    fps: float = 25.0
    max_carry: int = 1

    def __post_init__(self):
        def number(name, lo=None, hi=None, lo_open=False):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise InputError(f"TrackerParams.{name} must be a finite number, got {v!r}")
            if lo is not None and (v <= lo if lo_open else v < lo):
                raise InputError(
                    f"TrackerParams.{name} must be {'>' if lo_open else '>='} {lo}, got {v!r}"
                )
            if hi is not None and v > hi:
                raise InputError(f"TrackerParams.{name} must be <= {hi}, got {v!r}")

        def integer(name, lo):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise InputError(f"TrackerParams.{name} must be an integer >= {lo}, got {v!r}")

        for name in (
            "high_score",
            "low_score",
            "min_similarity",
            "iou_weight",
            "velocity_weight",
            "velocity_decay",
        ):
            number(name, 0.0, 1.0)
        number("kpt_threshold", 0.0)
        number("uncertainty_growth", 0.0)
        number("fps", 0.0, lo_open=True)
        if self.low_score > self.high_score:
            raise InputError(
                f"TrackerParams.low_score ({self.low_score}) must be <= "
                f"high_score ({self.high_score})"
            )
        integer("min_hits", 1)
        integer("max_age", 1)
        integer("keypoint_memory", 0)
        integer("max_carry", 0)
        if not isinstance(self.smoother, OneEuroParams):
            raise InputError(
                "TrackerParams.smoother must be a OneEuroParams, "
                f"got {type(self.smoother).__name__}"
            )

    @classmethod
    def from_dict(cls, values: dict) -> TrackerParams:
        """From a plain dict (e.g. JSON settings); unknown keys are refused by name."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise InputError(f"unknown tracker parameter(s) {unknown}; known: {sorted(names)}")
        values = dict(values)
        if isinstance(values.get("smoother"), dict):
            values["smoother"] = OneEuroParams(**values["smoother"])
        return cls(**values)


@dataclass
class _Det(Person):
    """A sanitised detection: ``keypoints`` with the keypoints the tracker ignores (score <=
    ``kpt_threshold``) zeroed, and ``raw``: the model's (K, 3) keypoints, NaN rows zeroed."""

    raw: np.ndarray | None = None


def _area(kpts: np.ndarray, box: np.ndarray) -> float:
    """Area (px^2) used as the OKS scale: the box, or the keypoints' extent when no box."""
    w, h = float(box[2] - box[0]), float(box[3] - box[1])
    if w > 0 and h > 0:
        return w * h
    present = kpts[:, 2] > 0
    if present.sum() < 2:
        return 1.0
    xy = kpts[present, :2]
    return max(float(np.ptp(xy[:, 0]) * np.ptp(xy[:, 1])), 1.0)


def _keypoint_box(kpts: np.ndarray) -> np.ndarray:
    present = kpts[:, 2] > 0
    if not present.any():
        return np.zeros(4)
    xy = kpts[present, :2]
    return np.array([xy[:, 0].min(), xy[:, 1].min(), xy[:, 0].max(), xy[:, 1].max()])


def _is_keypoint_box(box, kpts: np.ndarray) -> bool:
    """True when ``box`` is the box around the present keypoints (a bottom-up person's), not a
    detector's box: such a box is recomputed from the keypoints wherever they move."""
    return bool(np.allclose(box, _keypoint_box(kpts), atol=1e-6))


@dataclass(eq=False)
class _Track:
    """Internal state of one track (raw, unsmoothed measurements)."""

    kpts: np.ndarray  # (K, 3) last estimate: measured or predicted, score 0 = unknown
    raw: np.ndarray  # (K, 3) the last measurement as the model gave it
    box: np.ndarray  # (4,) xyxy
    frame: int  # frame index of the last position update
    velocity: np.ndarray  # (K, 2) px per frame
    has_velocity: np.ndarray  # (K,) bool
    box_velocity: np.ndarray  # (4,) px per frame
    kpt_age: np.ndarray  # (K,) rounds since each keypoint was measured
    smoother: OneEuroFilter
    hits: int = 1
    misses: int = 0  # consecutive rounds without a detection
    track_id: int = 0  # 0 while tentative
    score: float = 0.0
    box_is_keypoint_box: bool = True
    area: float = 1.0  # px^2, the person's size (OKS scale), from the last full measurement
    sized: bool = False  # True once a measurement with enough keypoints set ``area``

    def warp(self, m: np.ndarray) -> None:
        """Apply a camera motion: (2, 3) affine from the previous frame's px to this frame's."""
        linear = np.column_stack([m[:, :2], np.zeros(2)])  # velocities: no translation
        for arr in (self.kpts, self.raw):
            on = arr[:, 2] > 0
            arr[on, :2] = apply_affine(arr[on, :2], m)
        x1, y1, x2, y2 = self.box
        corners = apply_affine(np.array([[x1, y1], [x2, y1], [x1, y2], [x2, y2]]), m)
        self.box = np.concatenate([corners.min(0), corners.max(0)])
        self.velocity = apply_affine(self.velocity, linear)
        self.box_velocity = apply_affine(self.box_velocity.reshape(2, 2), linear).reshape(4)
        on = self.smoother.active[:, 0]
        self.smoother.x[on] = apply_affine(self.smoother.x[on], m)
        self.area *= abs(float(np.linalg.det(m[:, :2])))

    def predict(self, frame: int, params: TrackerParams) -> tuple[np.ndarray, np.ndarray]:
        """Predicted (K, 3) keypoints and (4,) box at ``frame``."""
        dt = frame - self.frame
        kpts = self.kpts.copy()
        if dt > 0:
            mean_v = (
                self.velocity[self.has_velocity].mean(axis=0)
                if self.has_velocity.any()
                else np.zeros(2)
            )
            v = np.where(self.has_velocity[:, None], self.velocity, mean_v)
            kpts[:, :2] += v * dt
            box = self.box + self.box_velocity * dt
        else:
            box = self.box.copy()
        return kpts, box


class Tracker:
    """Assigns stable ids to the people of consecutive frames.

    Args:
        params: :class:`TrackerParams` (defaults when None).
        layout: the keypoint layout of the people (a :class:`~simplepose.skeleton.KeypointLayout`
            or its name, e.g. a predictor's ``spec.keypoints``); it sets K and the OKS sigmas
            (:func:`~simplepose.skeleton.similarity_sigmas`). None: from the first people's
            keypoint count (:func:`~simplepose.skeleton.similarity_sigmas_for`).

    Example::

        tracker = Tracker()
        for index, frame in enumerate(frames):
            for person in tracker.update(predictor.predict(frame), index):
                print(person.track_id, person.keypoints)
    """

    def __init__(self, params: TrackerParams | None = None, layout=None):
        if params is not None and not isinstance(params, TrackerParams):
            raise InputError(f"Tracker params must be a TrackerParams, got {type(params).__name__}")
        self.params = params or TrackerParams()
        self.num_keypoints: int | None = None
        self._sigmas: np.ndarray | None = None
        if layout is not None:
            self._set_layout(get_layout(layout).num_keypoints, similarity_sigmas(layout))
        self.tracks: list[_Track] = []
        self.rounds = 0
        self.last_frame: int | None = None
        self._next_id = 1
        self._flow_pred: dict[int, _Det] = {}  # id(track) -> this frame's pose carried by flow

    def _set_layout(self, num_keypoints: int, sigmas: np.ndarray) -> None:
        self.num_keypoints = int(num_keypoints)
        self._sigmas = sigmas
        # a detection with fewer keypoints has no reliable size of its own (see _similarity)
        self._full_keypoints = max(3, round(0.3 * num_keypoints))

    # ------------------------------------------------------------------ input checks
    def _sanitize(self, people) -> list[_Det]:
        clean, nan_people, dropped = [], 0, 0
        for p in people:
            kpts = np.array(p.keypoints, dtype=np.float64)
            if self.num_keypoints is None and kpts.ndim == 2 and kpts.shape[1:] == (3,):
                self._set_layout(kpts.shape[0], similarity_sigmas_for(kpts.shape[0]))
            if kpts.shape != (self.num_keypoints, 3):
                raise InputError(
                    f"Tracker.update: a person's keypoints must have shape "
                    f"({self.num_keypoints}, 3), got {kpts.shape}"
                )
            score = float(p.score)
            if not math.isfinite(score):
                dropped += 1
                continue
            bad = ~np.isfinite(kpts).all(axis=1)
            if bad.any():
                nan_people += 1
                kpts[bad] = 0.0
            raw = kpts.copy()
            kpts[kpts[:, 2] <= self.params.kpt_threshold] = 0.0
            box = np.array(p.box, dtype=np.float64).reshape(-1)
            if box.shape != (4,) or not np.isfinite(box).all():
                box = _keypoint_box(raw)
            if not (kpts[:, 2] > 0).any():
                LOG.debug(
                    "tracker: ignoring a person without keypoints scored above %s",
                    self.params.kpt_threshold,
                )
                continue
            clean.append(_Det(keypoints=kpts, score=score, box=box, raw=raw))
        if nan_people or dropped:
            LOG.warning(
                "tracker: dropped the non-finite keypoints of %d person(s) and %d person(s) with a "
                "non-finite score",
                nan_people,
                dropped,
            )
        return clean

    def _check_frame(self, frame_index) -> int:
        if isinstance(frame_index, bool) or not isinstance(frame_index, (int, np.integer)):
            raise InputError(f"Tracker: frame_index must be an integer, got {frame_index!r}")
        frame_index = int(frame_index)
        if self.last_frame is not None and frame_index <= self.last_frame:
            raise InputError(
                f"Tracker: frame_index must increase, got {frame_index} after {self.last_frame}"
            )
        return frame_index

    def _begin(self, frame_index, carried, camera) -> tuple[int, dict]:
        """Check the frame, apply the camera motion, sanitise the carried poses."""
        frame = self._check_frame(frame_index)
        if camera is not None:
            m = np.asarray(camera, dtype=np.float64)
            if m.shape != (2, 3) or not np.isfinite(m).all():
                raise InputError(
                    f"Tracker: camera motion must be a finite (2, 3) affine, got shape {m.shape}"
                )
            for t in self.tracks:
                t.warp(m)
        by_id = {t.track_id: t for t in self.tracks if t.track_id > 0}
        clean = {}
        for track_id, person in (carried or {}).items():
            t = by_id.get(int(track_id))
            det = self._sanitize([person]) if t is not None else []
            if det:
                clean[id(t)] = det[0]
        self._flow_pred = clean
        return frame, clean

    # ------------------------------------------------------------------ association
    def _similarity(self, tracks: list[_Track], people: list[Person], frame: int) -> np.ndarray:
        """(T, N) similarity of tracks and people: the best over the track's hypotheses of
        where it is now (its pose carried by optical flow, its motion prediction and its last
        observation, all moved by the camera), so one wrong hypothesis (flow dragged along by
        an occluder, a velocity spoiled by a fast pan) does not lose the person."""
        sim = np.zeros((len(tracks), len(people)))
        if not tracks or not people:
            return sim
        p = self.params
        det_k = np.stack([d.keypoints for d in people])
        det_b = np.stack([d.box for d in people])
        det_area = np.array([_area(d.keypoints, d.box) for d in people])
        # a detection with few keypoints (a person at the frame edge or behind an occluder)
        # has no size of its own: it is compared at the track's size
        partial = (det_k[:, :, 2] > 0).sum(axis=1) < self._full_keypoints
        # a track never seen whole is assumed at least as large as the typical person
        sizes = [t.area for t in self.tracks if t.sized]
        typical = float(np.median(sizes)) if sizes else 1.0
        for i, t in enumerate(tracks):
            grow = (1.0 + p.uncertainty_growth * t.misses) ** 2
            area = (t.area if t.sized else max(t.area, typical)) * grow
            areas_b = np.where(partial, area, det_area * grow)
            hypotheses = [t.predict(frame, p), (t.kpts, t.box)]
            flow = self._flow_pred.get(id(t))
            if flow is not None:
                hypotheses.append((flow.keypoints, flow.box))
            for kpts, box in hypotheses:
                oks = oks_iou(kpts, det_k, area, areas_b, sigmas=self._sigmas, vis_thresh=0.0)
                iou = box_iou(box[None], det_b)[0] if p.iou_weight > 0 else 0.0
                sim[i] = np.maximum(sim[i], (1.0 - p.iou_weight) * oks + p.iou_weight * iou)
        return sim

    def _assign(self, tracks, people, frame) -> list[tuple[int, int]]:
        from scipy.optimize import linear_sum_assignment

        if not tracks or not people:
            return []
        sim = self._similarity(tracks, people, frame)
        rows, cols = linear_sum_assignment(1.0 - sim)
        return [
            (int(r), int(c)) for r, c in zip(rows, cols) if sim[r, c] >= self.params.min_similarity
        ]

    # ------------------------------------------------------------------ state updates
    def _measure(self, t: _Track, person: _Det, frame: int) -> None:
        p = self.params
        dt = max(frame - t.frame, 1)
        new = person.keypoints
        seen = new[:, 2] > 0
        both = seen & (t.kpts[:, 2] > 0) & (t.kpt_age == 0)
        if both.any():
            v = (new[both, :2] - t.kpts[both, :2]) / dt
            w = np.where(t.has_velocity[both], p.velocity_weight, 1.0)[:, None]
            t.velocity[both] = w * v + (1 - w) * t.velocity[both]
            t.has_velocity[both] = True
        t.has_velocity &= seen | (t.kpt_age < p.keypoint_memory)
        predicted, _ = t.predict(frame, p)
        keep = ~seen & (t.kpts[:, 2] > 0) & (t.kpt_age < p.keypoint_memory)
        kpts = np.zeros_like(new)
        kpts[seen] = new[seen]
        kpts[keep] = predicted[keep]
        t.kpt_age = np.where(seen, 0, t.kpt_age + 1)
        t.kpt_age[~seen & ~keep] = 0
        box_v = (person.box - t.box) / dt
        t.box_velocity = p.velocity_weight * box_v + (1 - p.velocity_weight) * t.box_velocity
        area = _area(person.keypoints, person.box)
        # a partial view (frame edge, occluder) shrinks the box, not the person
        full = int(seen.sum()) >= self._full_keypoints
        t.area = area if full else max(t.area, area)
        t.sized |= full
        t.kpts, t.box, t.frame = kpts, np.array(person.box, dtype=np.float64), frame
        t.score = float(person.score)
        t.raw = person.raw.copy()
        t.box_is_keypoint_box = _is_keypoint_box(person.box, person.raw)

    def _new_track(self, person: _Det, frame: int) -> _Track:
        k = self.num_keypoints
        return _Track(
            kpts=person.keypoints.copy(),
            raw=person.raw.copy(),
            box=np.array(person.box, dtype=np.float64),
            frame=frame,
            velocity=np.zeros((k, 2)), has_velocity=np.zeros(k, bool), box_velocity=np.zeros(4),
            kpt_age=np.zeros(k, int), smoother=OneEuroFilter(self.params.smoother, (k, 2)),
            score=float(person.score),
            box_is_keypoint_box=_is_keypoint_box(person.box, person.raw),
            area=_area(person.keypoints, person.box),
            sized=int((person.keypoints[:, 2] > 0).sum()) >= self._full_keypoints,
        )  # fmt: skip

    def _output(self, t: _Track, person: _Det, frame: int, carried: bool) -> TrackedPerson:
        kpts = person.raw.copy()
        present = kpts[:, 2] > 0
        if self.params.smoothing:
            box = t.box
            scale = max(float(box[3] - box[1]), float(box[2] - box[0]), 1.0)
            shift = None
            both = present & t.smoother.active[:, 0]
            if self.params.motion_compensation and both.any():
                # the person's robust translation since the last output: the filter smooths
                # the articulation around it instead of lagging behind the whole body
                shift = np.median(kpts[both, :2] - t.smoother.x[both], axis=0)
            kpts[:, :2] = t.smoother(
                kpts[:, :2], frame / self.params.fps, present[:, None], scale=scale, shift=shift
            )
            kpts[~present] = 0.0
        box = (
            _keypoint_box(kpts) if t.box_is_keypoint_box else np.array(person.box, dtype=np.float64)
        )
        return TrackedPerson(
            keypoints=kpts, score=float(person.score), box=box, track_id=t.track_id, carried=carried
        )

    def _confirm(self, t: _Track) -> None:
        if t.track_id == 0 and (
            t.hits >= self.params.min_hits or self.rounds <= self.params.min_hits
        ):
            t.track_id = self._next_id
            self._next_id += 1

    # ------------------------------------------------------------------ public API
    def update(
        self, people, frame_index: int, carried: dict | None = None, camera=None
    ) -> list[TrackedPerson]:
        """Associate this frame's people with the tracks.

        Args:
            people: the frame's detections (:class:`~simplepose.structures.Person`, keypoints
                (K, 3) px + score).
            frame_index: the frame's index; must increase between calls (gaps are allowed:
                motion is predicted over them).
            carried: optional ``{track_id: Person}`` poses carried from the previous frame by
                optical flow. They predict where the tracks are for the association, and a
                confirmed track that no detection matches is output at its carried pose for up
                to ``max_carry`` rounds.
            camera: optional (2, 3) affine from the previous frame's px to this frame's (camera
                motion, see :func:`~simplepose.tracking.flow.estimate_camera_motion`), applied
                to every track first, so that lost tracks follow the camera and are found again.

        Returns:
            The confirmed tracks seen in this frame, as :class:`TrackedPerson`, detections first
            in input order, then carried tracks.
        """
        frame, flow = self._begin(frame_index, carried, camera)
        people = self._sanitize(people)
        p = self.params
        self.rounds += 1
        high = [i for i, d in enumerate(people) if d.score >= p.high_score]
        low = [i for i, d in enumerate(people) if p.low_score <= d.score < p.high_score]
        confirmed = [t for t in self.tracks if t.track_id > 0]
        tentative = [t for t in self.tracks if t.track_id == 0]
        matches: dict[int, _Track] = {}  # person index -> track

        def run(track_pool, person_idx):
            pairs = self._assign(track_pool, [people[i] for i in person_idx], frame)
            for r, c in pairs:
                matches[person_idx[c]] = track_pool[r]
            used = {id(track_pool[r]) for r, _ in pairs}
            return [t for t in track_pool if id(t) not in used], [
                i for i in person_idx if i not in matches
            ]

        free, high_left = run(confirmed, high)
        free, _ = run(free, low)
        _, high_left = run(tentative, high_left)

        matched = {id(t) for t in matches.values()}
        for t in list(self.tracks):
            if id(t) in matched:
                continue
            t.misses += 1
            t.velocity *= p.velocity_decay
            t.box_velocity *= p.velocity_decay
            if t.track_id == 0 or t.misses > p.max_age:
                self.tracks.remove(t)
        out: list[TrackedPerson] = []
        for i in sorted(matches):
            t = matches[i]
            self._measure(t, people[i], frame)
            t.hits += 1
            t.misses = 0
            self._confirm(t)
            if t.track_id > 0:
                out.append(self._output(t, people[i], frame, carried=False))
        for i in high_left:
            t = self._new_track(people[i], frame)
            self.tracks.append(t)
            self._confirm(t)
            if t.track_id > 0:
                out.append(self._output(t, people[i], frame, carried=False))
        out += self._carry(flow, frame, exclude=matched)
        self.last_frame = frame
        return out

    def carry(self, carried: dict, frame_index: int, camera=None) -> list[TrackedPerson]:
        """A frame without detections: move tracks to their poses carried by optical flow.

        Tracks are not aged (no detection round happened). ``carried`` and ``camera`` are as
        in :meth:`update`. Returns the tracks output in this frame (see ``max_carry``).
        """
        frame, flow = self._begin(frame_index, carried, camera)
        out = self._carry(flow, frame, exclude=set())
        self.last_frame = frame
        return out

    def _carry(self, flow: dict, frame: int, exclude: set) -> list[TrackedPerson]:
        out = []
        for t in self.tracks:
            det = flow.get(id(t))
            if det is None or id(t) in exclude or t.misses > self.params.max_carry:
                continue
            self._measure(t, det, frame)
            out.append(self._output(t, det, frame, carried=True))
        return out

    def active(self) -> list[TrackedPerson]:
        """The confirmed tracks placed in the last frame, at their raw (unsmoothed) positions,
        for carrying to the next frame by optical flow."""
        return [
            TrackedPerson(keypoints=t.raw.copy(), score=t.score, box=t.box, track_id=t.track_id)
            for t in self.tracks if t.track_id > 0 and t.frame == self.last_frame
        ]  # fmt: skip
