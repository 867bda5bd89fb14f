"""Association details: layouts other than COCO-17, partial people, competing hypotheses of
where a track is, camera motion on a fast pan, and the tracker on exact ground-truth poses."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from simplepose.errors import InputError
from simplepose.evaluation.video import ground_truth_people, synthesize_sequence, tracking_metrics
from simplepose.skeleton import (
    COCO_SIGMAS,
    DEFAULT_SIGMA,
    get_layout,
    similarity_sigmas,
    similarity_sigmas_for,
)
from simplepose.structures import Person
from simplepose.tracking import FlowFrame, Tracker, TrackerParams, track_frames
from simplepose.tracking.flow import estimate_camera_motion


def _pose(k: int, cx: float, cy: float, height: float = 160.0, seed: int = 0) -> np.ndarray:
    """(k, 3) keypoints spread over a person-sized box centred at (cx, cy), all scored 0.9."""
    rng = np.random.default_rng(seed)
    out = np.zeros((k, 3))
    out[:, 0] = cx + rng.uniform(-0.2, 0.2, k) * height
    out[:, 1] = cy + np.linspace(-0.5, 0.5, k) * height
    out[:, 2] = 0.9
    return out


def _person(kpts: np.ndarray, score: float = 0.9) -> Person:
    return Person.from_keypoints(kpts.copy(), score)


def _raw(**kw) -> TrackerParams:
    return TrackerParams(smoothing=False, min_hits=1, **kw)


def test_similarity_sigmas_come_from_the_layout():
    np.testing.assert_allclose(similarity_sigmas("coco17"), COCO_SIGMAS)
    crowd = get_layout("crowdpose14")
    np.testing.assert_allclose(similarity_sigmas(crowd), crowd.sigmas)
    # MPII defines no sigmas: named keypoints borrow them, the others get the default
    mpii = get_layout("mpii16")
    sig = similarity_sigmas(mpii)
    coco = dict(zip(get_layout("coco17").keypoints, COCO_SIGMAS))
    for name, s in zip(mpii.keypoints, sig):
        assert s == pytest.approx(coco.get(name, crowd_or_default(name, crowd)))
    assert sig.shape == (16,) and (sig == DEFAULT_SIGMA).sum() >= 1
    np.testing.assert_allclose(similarity_sigmas_for(16), sig)
    assert similarity_sigmas_for(5).tolist() == [DEFAULT_SIGMA] * 5


def crowd_or_default(name, crowd):
    return dict(zip(crowd.keypoints, crowd.sigmas)).get(name, DEFAULT_SIGMA)


@pytest.mark.parametrize("layout", ["crowdpose14", "mpii16"])
def test_crossing_people_of_other_layouts_keep_their_ids(layout):
    k = get_layout(layout).num_keypoints
    for tracker in (Tracker(_raw(), layout=layout), Tracker(_raw())):  # explicit or by count
        history: dict[int, list[float]] = {}
        for f in range(30):
            a = _person(_pose(k, 100 + 10 * f, 200, seed=1))
            b = _person(_pose(k, 390 - 10 * f, 205, seed=2))
            for p in tracker.update([a, b], f):
                assert p.keypoints.shape == (k, 3)
                history.setdefault(p.track_id, []).append(p.keypoints[:, 0].mean())
        assert tracker.num_keypoints == k
        assert sorted(np.sign(np.diff(xs)).mean() for xs in history.values()) == [-1.0, 1.0]


def test_a_layout_and_people_of_another_size_are_refused():
    tracker = Tracker(layout="mpii16")
    with pytest.raises(InputError, match=r"\(16, 3\), got \(17, 3\)"):
        tracker.update([_person(_pose(17, 100, 100))], 0)


def test_a_person_leaving_the_frame_keeps_their_id_on_few_keypoints():
    # a person walks out of the right edge: the detector sees fewer and fewer keypoints, and
    # their box (hence their own size) shrinks to a sliver
    tracker = Tracker(_raw())
    full = _pose(17, 300, 200)
    ids = set()
    for f in range(12):
        k = full.copy()
        k[:, 0] += 12 * f
        visible = k[:, 0] < 400
        k[~visible] = 0.0
        if visible.sum() == 0:
            break
        out = tracker.update([_person(k)], f)
        ids |= {p.track_id for p in out}
    assert ids == {1}


def test_a_track_never_seen_whole_takes_the_typical_size():
    tracker = Tracker(_raw())
    others = [_person(_pose(17, x, 200)) for x in (100, 500)]
    edge = np.zeros((17, 3))
    edge[0] = [700.0, 120.0, 0.9]  # one keypoint at the frame edge
    edge[5] = [703.0, 150.0, 0.9]
    ids = []
    for f in range(6):
        k = edge.copy()
        k[k[:, 2] > 0, 0] += 4 * f  # it moves a little: OKS at its own tiny size would fail
        out = tracker.update([*others, _person(k)], f)
        ids.append([p.track_id for p in out if p.keypoints[0, 0] > 600])
    assert all(i == ids[0] for i in ids) and len(ids[0]) == 1


def test_a_wrong_flow_hypothesis_does_not_lose_the_person():
    tracker = Tracker(_raw())
    for f in range(4):
        tracker.update([_person(_pose(17, 100 + 5 * f, 200))], f)
    # flow dragged the pose far away (say, along an occluder passing over the person)
    wrong = _person(_pose(17, 400, 200))
    out = tracker.update([_person(_pose(17, 120, 200))], 4, carried={1: wrong})
    assert [p.track_id for p in out if not p.carried] == [1]


def _textured(h, w, seed=0):
    """Texture at several scales, as real scenes have (fine noise alone is flat once shrunk)."""
    rng = np.random.default_rng(seed)
    out = np.zeros((h, w, 3))
    for cell in (40, 10, 2):
        coarse = rng.uniform(0, 1, (h // cell + 1, w // cell + 1, 3))
        out += cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(out / 3 * 255, 0, 255).astype(np.uint8)


def test_camera_motion_follows_a_fast_pan():
    # 80 px between two 640 px frames: more than the first, fine try follows
    big = _textured(700, 900, seed=3)
    a = big[100:580, 100:740].copy()
    b = big[100 + 30 : 580 + 30, 100 + 80 : 740 + 80].copy()  # the view moved right and down
    got = estimate_camera_motion(FlowFrame.from_image(a), FlowFrame.from_image(b))
    assert got is not None
    np.testing.assert_allclose(got[:, :2], np.eye(2), atol=0.02)
    np.testing.assert_allclose(got[:, 2], [-80.0, -30.0], atol=2.0)


def test_tracker_on_exact_ground_truth_poses_associates_perfectly():
    rng = np.random.default_rng(0)
    image = _textured(480, 640, seed=5)
    anns = []
    for i, (x0, y0) in enumerate([(60, 80), (250, 90), (430, 70), (330, 260)]):
        k = _pose(17, x0 + 40, y0 + 70, height=140, seed=i)
        k[:, 2] = 2
        anns.append({
            "id": 10 + i, "keypoints": k.reshape(-1).tolist(), "num_keypoints": 17,
            "area": 80 * 140.0, "bbox": [x0, y0, 80, 140], "iscrowd": 0, "category_id": 1,
        })  # fmt: skip
    seq = synthesize_sequence(image, anns, rng, num_frames=24, size=(320, 240), max_zoom=1.4)
    people = [
        ground_truth_people(a, np.random.default_rng(t)) for t, a in enumerate(seq.annotations)
    ]
    # the order says nothing about identity
    assert any(
        [p.keypoints[0, 0] for p in ps] != sorted(p.keypoints[0, 0] for p in ps) for ps in people
    )
    by_frame = {id(f): ps for f, ps in zip(seq.frames, people)}

    class Replay:
        def predict(self, image):
            return by_frame[id(image)]

    out = [[t.people for t in track_frames(Replay(), seq.frames, params=_raw())]]
    m = tracking_metrics([seq.annotations], out)
    assert m["id_switches"] == 0
    assert m["assa"] > 0.97 and m["idf1"] > 0.97
