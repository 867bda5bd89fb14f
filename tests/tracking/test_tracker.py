"""Tracker: crossing people, a person missed for frames, birth and death, re-identification,
parameter validation, NaN keypoints, and the real-time engine on a fake model."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from simplepose.errors import InputError
from simplepose.structures import Person
from simplepose.tracking import OneEuroParams, TrackedPerson, Tracker, TrackerParams, track_frames

# a standing person's keypoints relative to the body centre (px, height about 160)
_SHAPE = np.array([
    [0, -70], [-5, -75], [5, -75], [-10, -72], [10, -72], [-20, -45], [20, -45],
    [-28, -15], [28, -15],
    [-30, 10], [30, 10], [-12, 10], [12, 10], [-13, 45], [13, 45], [-14, 80], [14, 80],
], dtype=np.float64)  # fmt: skip


def person(cx: float, cy: float, score: float = 0.9, scale: float = 1.0) -> Person:
    k = np.zeros((17, 3))
    k[:, :2] = _SHAPE * scale + [cx, cy]
    k[:, 2] = 0.8
    return Person.from_keypoints(k, score)


def ids_by_x(out: list[TrackedPerson]) -> list[int]:
    return [p.track_id for p in sorted(out, key=lambda p: p.keypoints[0, 0])]


def raw(**kw) -> TrackerParams:
    """Parameters with smoothing off, so outputs equal inputs."""
    return TrackerParams(smoothing=False, **kw)


def test_two_people_crossing_keep_their_ids():
    tracker = Tracker(raw(min_hits=1))
    first = None
    history = {}
    for f in range(30):
        a = person(100 + 10 * f, 200)  # walks right
        b = person(390 - 10 * f, 205)  # walks left, crosses a around f = 14.5
        out = tracker.update([a, b], f)
        assert len(out) == 2
        for p in out:
            history.setdefault(p.track_id, []).append(p.keypoints[0, 0])
        if first is None:
            first = ids_by_x(out)
    assert len(history) == 2, f"ids changed: {sorted(history)}"
    # each id's nose moves monotonically in one direction: no swap at the crossing
    directions = sorted(np.sign(np.diff(xs)).mean() for xs in history.values())
    assert directions == [-1.0, 1.0]


def test_person_missed_for_three_frames_keeps_id():
    tracker = Tracker(raw(min_hits=1, max_age=10))
    ids = {}
    for f in range(20):
        people = [person(100 + 6 * f, 200)]
        if not 8 <= f < 11:  # the second person is missed in frames 8, 9, 10
            people.append(person(400 - 4 * f, 220))
        out = tracker.update(people, f)
        for p in out:
            ids.setdefault("walker" if p.keypoints[0, 0] < 250 else "other", set()).add(p.track_id)
        if 8 <= f < 11:
            assert len(out) == 1
    assert len(ids["walker"]) == 1 and len(ids["other"]) == 1
    assert ids["walker"] != ids["other"]


def test_birth_after_min_hits_and_death_after_max_age():
    tracker = Tracker(raw(min_hits=3, max_age=2))
    a = [person(100, 200)]
    assert [p.track_id for p in tracker.update(a, 0)] == [1]  # first frames: confirmed at once
    for f in range(1, 5):
        tracker.update(a, f)
    newcomer = person(400, 200)
    out = tracker.update(a + [newcomer], 5)
    assert len(out) == 1, "a newcomer is tentative on its first frame"
    out = tracker.update(a + [person(402, 200)], 6)
    assert len(out) == 1, "still tentative after 2 of 3 hits"
    out = tracker.update(a + [person(404, 200)], 7)
    assert sorted(p.track_id for p in out) == [1, 2], "born at its 3rd hit with the next id"
    # the newcomer leaves: its track dies after max_age = 2 rounds without a match
    for f in (8, 9):
        tracker.update(a, f)
        assert any(t.track_id == 2 for t in tracker.tracks)
    tracker.update(a, 10)
    assert not any(t.track_id == 2 for t in tracker.tracks)
    # coming back after death gives a new id (birth again, first round tentative)
    tracker.update(a + [person(404, 200)], 11)
    out = tracker.update(a + [person(404, 200)], 12)
    out = tracker.update(a + [person(404, 200)], 13)
    assert sorted(p.track_id for p in out) == [1, 3]


def test_tentative_track_dies_at_first_miss():
    tracker = Tracker(raw(min_hits=2))
    tracker.update([person(100, 200)], 0)
    tracker.update([person(100, 200)], 1)
    tracker.update([person(100, 200), person(400, 200)], 2)  # newcomer, tentative
    tracker.update([person(100, 200)], 3)  # missed once: dropped
    assert len(tracker.tracks) == 1


def test_low_score_person_extends_but_never_starts_a_track():
    tracker = Tracker(raw(min_hits=1, high_score=0.5, low_score=0.1))
    out = tracker.update([person(100, 200, score=0.9)], 0)
    out = tracker.update([person(104, 200, score=0.2)], 1)  # second pass keeps the track
    assert [p.track_id for p in out] == [1]
    out = tracker.update([person(108, 200, score=0.2), person(400, 200, score=0.2)], 2)
    assert [p.track_id for p in out] == [1]
    assert len(tracker.tracks) == 1
    out = tracker.update([person(112, 200, score=0.05)], 3)  # below low_score: ignored
    assert out == []


def test_reidentification_after_a_gap_with_motion():
    # the person keeps walking while unseen for 5 frames and is found where predicted
    tracker = Tracker(raw(min_hits=1, max_age=10))
    for f in range(10):
        out = tracker.update([person(100 + 8 * f, 200)], f)
    for f in range(10, 15):
        assert tracker.update([], f) == []
    out = tracker.update([person(100 + 8 * 15, 200)], 15)
    assert [p.track_id for p in out] == [1]


def test_frame_index_must_increase():
    tracker = Tracker()
    tracker.update([], 3)
    with pytest.raises(InputError, match="frame_index must increase"):
        tracker.update([], 3)


@pytest.mark.parametrize("kwargs, name", [
    ({"min_hits": 0}, "min_hits"),
    ({"max_age": -1}, "max_age"),
    ({"max_age": 2.5}, "max_age"),
    ({"high_score": 1.5}, "high_score"),
    ({"low_score": float("nan")}, "low_score"),
    ({"low_score": 0.6, "high_score": 0.5}, "low_score"),
    ({"min_similarity": -0.1}, "min_similarity"),
    ({"iou_weight": 2}, "iou_weight"),
    ({"fps": 0}, "fps"),
    ({"keypoint_memory": -1}, "keypoint_memory"),
    ({"smoother": {"beta": 1}}, "smoother"),
])  # fmt: skip
def test_parameter_validation_names_the_parameter(kwargs, name):
    with pytest.raises(InputError, match=name):
        TrackerParams(**kwargs)


def test_one_euro_parameter_validation():
    with pytest.raises(InputError, match="min_cutoff"):
        OneEuroParams(min_cutoff=0)
    with pytest.raises(InputError, match="beta"):
        OneEuroParams(beta=-1)


def test_from_dict_refuses_unknown_keys():
    with pytest.raises(InputError, match="max_ages"):
        TrackerParams.from_dict({"max_ages": 3})
    assert TrackerParams.from_dict({"max_age": 3, "smoother": {"beta": 0.5}}).smoother.beta == 0.5


def test_nan_keypoints_are_dropped_with_a_warning(caplog):
    tracker = Tracker(TrackerParams(min_hits=1))
    good = person(100, 200)
    tracker.update([good], 0)
    bad = person(104, 200)
    bad.keypoints[3] = [np.nan, 5.0, 0.9]
    bad.keypoints[7, 1] = np.inf
    no_score = person(300, 200, score=float("nan"))
    with caplog.at_level(logging.WARNING, logger="simplepose.tracking.tracker"):
        out = tracker.update([bad, no_score], 1)
    assert "non-finite" in caplog.text
    assert len(out) == 1 and out[0].track_id == 1
    assert np.isfinite(out[0].keypoints).all() and np.isfinite(out[0].box).all()
    assert out[0].keypoints[3, 2] == 0 and out[0].keypoints[7, 2] == 0
    for t in tracker.tracks:
        assert np.isfinite(t.kpts).all() and np.isfinite(t.velocity).all()
    # later frames stay finite too
    out = tracker.update([person(108, 200)], 2)
    assert np.isfinite(out[0].keypoints).all()


def test_bad_keypoint_shape_is_refused():
    # K is free (it comes from the layout or the first people), the x, y, score columns not
    with pytest.raises(InputError, match=r"got \(17, 2\)"):
        Tracker().update([Person(keypoints=np.zeros((17, 2)), score=1.0, box=np.zeros(4))], 0)
    tracker = Tracker()
    tracker.update([person(100, 200)], 0)
    with pytest.raises(InputError, match=r"\(17, 3\), got \(5, 3\)"):
        tracker.update([Person(keypoints=np.zeros((5, 3)), score=1.0, box=np.zeros(4))], 1)


def test_smoothing_reduces_jitter_without_lag_and_keypoint_that_vanishes_restarts():
    rng = np.random.default_rng(0)
    tracker = Tracker(TrackerParams(min_hits=1, smoother=OneEuroParams(min_cutoff=1.0, beta=5.0)))
    err_raw, err_out = [], []
    for f in range(60):
        truth = person(200 + 2 * f, 200)  # 2 px per frame
        noisy = person(200 + 2 * f, 200)
        noisy.keypoints[:, :2] += rng.normal(0, 2.0, (17, 2))
        if 30 <= f < 33:
            noisy.keypoints[9] = 0  # the left wrist vanishes for 3 frames
        out = tracker.update([noisy], f)[0]
        if f == 33:  # it restarts at its new measurement, not at the stale filtered value
            np.testing.assert_allclose(out.keypoints[9, :2], noisy.keypoints[9, :2])
        if 30 <= f < 33:
            assert out.keypoints[9, 2] == 0
        if f >= 10:
            err_raw.append(noisy.keypoints[:, :2] - truth.keypoints[:, :2])
            err_out.append(out.keypoints[:, :2] - truth.keypoints[:, :2])
    err_raw, err_out = np.array(err_raw), np.array(err_out)

    def acceleration(e):
        return np.linalg.norm(e[2:] - 2 * e[1:-1] + e[:-2], axis=-1).mean()

    assert acceleration(err_out) < 0.5 * acceleration(err_raw)  # jitter cut
    assert np.abs(err_out).mean() < np.abs(err_raw).mean()  # and no lag worse than the noise


class _FakeModel:
    """predict(image) -> the people drawn into the image as bright squares at known places."""

    def __init__(self, centres):
        self.centres = centres  # frame index (from the image's first pixel) -> [(cx, cy)]
        self.calls = 0

    def predict(self, image):
        self.calls += 1
        return [person(cx, cy) for cx, cy in self.centres[int(image[0, 0, 0])]]


def test_track_frames_every_frame_and_realtime_sync():
    import cv2

    rng = np.random.default_rng(1)
    texture = cv2.GaussianBlur(rng.integers(0, 255, (360, 900, 3)).astype(np.uint8), (0, 0), 2)
    frames, centres = [], {}
    for f in range(12):
        shift = 3 * f  # the whole scene pans 3 px per frame
        frame = np.ascontiguousarray(texture[:, 100 - shift : 100 - shift + 640])
        frame[0, 0, 0] = f
        frames.append(frame)
        centres[f] = [(150 + shift, 180), (400 + shift, 180)]
    model = _FakeModel(centres)
    every = list(track_frames(model, frames, TrackerParams(smoothing=False)))
    assert model.calls == 12 and [len(t.people) for t in every] == [2] * 12
    assert {p.track_id for t in every for p in t.people} == {1, 2}

    model = _FakeModel(centres)
    out = list(
        track_frames(
            model,
            frames,
            TrackerParams(smoothing=False),
            realtime=True,
            sync=True,
            keyframe_interval=4,
        )
    )
    assert model.calls == 3 and [t.keyframe for t in out] == [f % 4 == 0 for f in range(12)]
    assert [t.index for t in out] == list(range(12))
    for t in out:
        assert len(t.people) == 2 and {p.track_id for p in t.people} == {1, 2}
        for p in t.people:  # carried frames follow the pan to within a pixel
            cx = p.keypoints[:, 0].mean() - _SHAPE[:, 0].mean()
            assert min(abs(cx - c[0]) for c in centres[t.index]) < 1.0


def test_realtime_threaded_outputs_every_frame_in_order():
    import cv2

    rng = np.random.default_rng(2)
    texture = cv2.GaussianBlur(rng.integers(0, 255, (360, 700, 3)).astype(np.uint8), (0, 0), 2)
    frames, centres = [], {}
    for f in range(15):
        frame = np.ascontiguousarray(texture[:, 40 - 2 * f : 40 - 2 * f + 640])
        frame[0, 0, 0] = f
        frames.append(frame)
        centres[f] = [(300 + 2 * f, 180)]
    model = _FakeModel(centres)
    out = list(track_frames(model, frames, realtime=True, keyframe_interval=3))
    assert [t.index for t in out] == list(range(15))
    assert out[0].keyframe and 2 <= model.calls <= 15
    assert all(len(t.people) == 1 and t.people[0].track_id == 1 for t in out)


def test_realtime_refuses_a_frame_size_change():
    frames = [np.zeros((100, 120, 3), np.uint8), np.zeros((90, 120, 3), np.uint8)]
    model = _FakeModel({0: []})
    with pytest.raises(InputError, match="frame 1 is 120x90"):
        list(track_frames(model, frames, realtime=True, sync=True))


def test_lost_track_follows_the_camera_and_is_found_again():
    # the camera pans 25 px per frame while the person is out of sight for 6 frames: without
    # the camera motion the prediction stays behind; with it the old id comes back
    def run(camera):
        tracker = Tracker(raw(min_hits=1, max_age=20))
        for f in range(5):
            tracker.update([person(300, 200)], f)
        for f in range(5, 11):
            tracker.update(
                [], f, camera=np.array([[1.0, 0, -25.0], [0, 1.0, 0]]) if camera else None
            )
        return tracker.update(
            [person(300 - 25 * 6, 200)],
            11,
            camera=np.array([[1.0, 0, -25.0], [0, 1.0, 0]]) if camera else None,
        )

    assert [p.track_id for p in run(camera=True)] == [1]
    assert [p.track_id for p in run(camera=False)] != [1]
    with pytest.raises(InputError, match="camera motion"):
        Tracker().update([], 0, camera=np.eye(3))
