"""One-Euro filter against its defining equations; optical-flow propagation of keypoints."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from simplepose.errors import InputError
from simplepose.tracking import (
    FlowFrame,
    FlowParams,
    OneEuroFilter,
    OneEuroParams,
    propagate_keypoints,
)
from simplepose.tracking.flow import propagate_points


def one_euro_reference(xs, ts, min_cutoff, beta, d_cutoff):
    """The filter written out scalar by scalar from Casiez et al. (2012)."""

    def alpha(cutoff, te):
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / te)

    out = [xs[0]]
    xhat, dxhat = xs[0], 0.0
    for i in range(1, len(xs)):
        te = ts[i] - ts[i - 1]
        dx = (xs[i] - xhat) / te
        a_d = alpha(d_cutoff, te)
        dxhat = a_d * dx + (1 - a_d) * dxhat
        cutoff = min_cutoff + beta * abs(dxhat)
        a = alpha(cutoff, te)
        xhat = a * xs[i] + (1 - a) * xhat
        out.append(xhat)
    return np.array(out)


@pytest.mark.parametrize(
    "min_cutoff, beta, d_cutoff", [(1.0, 0.0, 1.0), (0.5, 0.05, 2.0), (2.0, 0.7, 0.3)]
)
def test_one_euro_matches_the_defining_equations(min_cutoff, beta, d_cutoff):
    rng = np.random.default_rng(0)
    ts = np.cumsum(rng.uniform(0.02, 0.06, 80))  # irregular sampling
    xs = np.cumsum(rng.normal(0, 3, 80)) + 10 * np.sin(ts * 3)
    f = OneEuroFilter(OneEuroParams(min_cutoff, beta, d_cutoff), shape=(1,))
    got = np.array([f(np.array([x]), t)[0] for x, t in zip(xs, ts)])
    np.testing.assert_allclose(
        got, one_euro_reference(xs, ts, min_cutoff, beta, d_cutoff), rtol=1e-12, atol=1e-12
    )


def test_one_euro_elements_are_independent_and_scale_divides_speed():
    rng = np.random.default_rng(1)
    xs = rng.normal(0, 5, (40, 3, 2))
    ts = np.arange(40) / 30.0
    f = OneEuroFilter(OneEuroParams(1.0, 0.3, 1.0), shape=(3, 2))
    got = np.array([f(x, t, scale=2.0) for x, t in zip(xs, ts)])
    for i in range(3):
        for j in range(2):
            # dividing the speed by 2 before beta is the same as halving beta
            ref = one_euro_reference(xs[:, i, j], ts, 1.0, 0.15, 1.0)
            np.testing.assert_allclose(got[:, i, j], ref, atol=1e-12)


def test_one_euro_absent_elements_reset_and_restart():
    f = OneEuroFilter(OneEuroParams(1.0, 0.0, 1.0), shape=(2,))
    f(np.array([0.0, 0.0]), 0.0)
    f(np.array([10.0, 10.0]), 0.1)
    out = f(np.array([20.0, 99.0]), 0.2, present=np.array([True, False]))
    assert out[1] == 99.0  # absent: passed through, state dropped
    out = f(np.array([30.0, 50.0]), 0.3)
    assert out[1] == 50.0  # back: starts afresh at its new value (no stale state)
    assert 0 < out[0] < 30.0  # the other element kept filtering
    with pytest.raises(InputError, match="shape"):
        f(np.zeros(3), 0.4)


def _textured(h=240, w=320, seed=0):
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3)).astype(np.uint8), (0, 0), 1.5)


@pytest.mark.parametrize("dx, dy", [(3.0, -2.0), (7.5, 4.25), (-12.0, 9.0)])
def test_flow_follows_a_synthetic_translation_to_half_a_pixel(dx, dy):
    big = _textured(400, 500)
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    a = big[80:320, 90:410].copy()
    b = cv2.warpAffine(big, m, (big.shape[1], big.shape[0]), flags=cv2.INTER_LINEAR)[
        80:320, 90:410
    ].copy()
    rng = np.random.default_rng(3)
    pts = rng.uniform([40, 40], [280, 200], (3, 17, 2))
    kpts = np.concatenate([pts, np.full((3, 17, 1), 0.9)], axis=2)
    kpts[1, 4] = 0  # a missing keypoint stays missing and is not moved
    out = propagate_keypoints(FlowFrame.from_image(a), FlowFrame.from_image(b), kpts)
    present = kpts[..., 2] > 0
    assert (out[..., 2][present] > 0).all(), "no point should be lost on a clean translation"
    err = np.abs(out[..., :2][present] - (kpts[..., :2][present] + [dx, dy]))
    assert err.max() <= 0.5, f"max error {err.max():.3f} px"
    np.testing.assert_array_equal(out[1, 4], 0)


def test_flow_loses_points_that_leave_the_frame_or_fail_the_check():
    a = _textured()
    b = np.roll(a, 6, axis=1)
    pts = np.array([[316.0, 100.0], [-5.0, 10.0], [np.nan, 3.0], [160.0, 120.0]])
    out, ok = propagate_points(FlowFrame.from_image(a), FlowFrame.from_image(b), pts)
    assert ok.tolist() == [False, False, False, True]
    assert abs(out[3, 0] - 166.0) < 0.5
    # against an unrelated image, the forward-backward check drops most points
    noise = FlowFrame.from_image(_textured(seed=9))
    grid = np.stack(np.meshgrid(np.arange(40, 280, 40.0), np.arange(40, 200, 40.0)), -1).reshape(
        -1, 2
    )
    _, ok = propagate_points(FlowFrame.from_image(a), noise, grid, FlowParams(fb_threshold=0.5))
    assert ok.mean() < 0.5


def test_flow_refuses_mismatched_sizes_and_bad_params():
    with pytest.raises(InputError, match="different sizes"):
        propagate_points(
            FlowFrame.from_image(_textured(100, 120)),
            FlowFrame.from_image(_textured(100, 130)),
            np.zeros((1, 2)),
        )
    with pytest.raises(InputError, match="win_size"):
        FlowParams(win_size=1)
    with pytest.raises(InputError, match="fb_threshold"):
        FlowParams(fb_threshold=-1)


def test_camera_motion_recovers_a_similarity_transform():
    from simplepose.tracking.flow import estimate_camera_motion

    big = _textured(480, 640, seed=4)
    m = cv2.getRotationMatrix2D((320, 240), 2.0, 1.03)
    m[:, 2] += [6.0, -4.0]
    a = big[60:420, 80:560].copy()
    # b is the view of the warped scene through the same window: its px = m(scene px) - offset
    b = cv2.warpAffine(big, m, (640, 480), flags=cv2.INTER_LINEAR)[60:420, 80:560].copy()
    got = estimate_camera_motion(FlowFrame.from_image(a), FlowFrame.from_image(b))
    assert got is not None
    pts = np.array([[50.0, 40.0], [400.0, 300.0], [240.0, 180.0]])
    want = (pts + [80, 60]) @ m[:, :2].T + m[:, 2] - [80, 60]
    np.testing.assert_allclose(pts @ got[:, :2].T + got[:, 2], want, atol=0.5)
    blank = FlowFrame.from_image(np.zeros((100, 100), np.uint8))
    assert estimate_camera_motion(blank, blank) is None


def test_carried_people_keep_their_kind_of_box():
    """Flow carries a keypoint box as the new keypoints' box, and a detector's box by the
    keypoints' mean displacement (VideoTracker._move)."""
    from simplepose.structures import Person
    from simplepose.tracking import TrackedPerson, VideoTracker

    big = _textured(400, 500)
    dx, dy = 6.0, -4.0
    a = big[80:320, 90:410].copy()
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    b = cv2.warpAffine(big, m, (big.shape[1], big.shape[0]))[80:320, 90:410].copy()
    pts = np.random.default_rng(5).uniform([60, 60], [260, 180], (17, 2))
    kpts = np.concatenate([pts, np.full((17, 1), 0.9)], axis=1)
    own = Person.from_keypoints(kpts, 1.0)  # a keypoint box
    det = TrackedPerson(keypoints=kpts, score=1.0, box=own.box + [-10, -10, 10, 10], track_id=4)
    vt = VideoTracker(lambda image: [])
    moved_own, moved_det = vt._move([own, det], FlowFrame.from_image(a), FlowFrame.from_image(b))
    assert type(moved_own) is Person and isinstance(moved_det, TrackedPerson)
    assert moved_det.track_id == 4 and moved_det.carried
    np.testing.assert_allclose(moved_own.box, Person.from_keypoints(moved_own.keypoints, 1).box)
    np.testing.assert_allclose(moved_det.box, det.box + [dx, dy, dx, dy], atol=0.5)
