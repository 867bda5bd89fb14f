"""The numba renderers equal the numpy renderers of simplepose.codecs.render (to 1e-6)."""

from __future__ import annotations

import numpy as np
import pytest

from simplepose.codecs import render as np_render
from simplepose.codecs import render_numba as nb_render
from simplepose.codecs.bottomup import SimplePoseCodec
from simplepose.skeleton import SIMPLEPOSE18


def _random_joints(rng, n, lo=-80.0, hi=330.0):
    j = np.zeros((n, 18, 3))
    j[..., :2] = rng.uniform(lo, hi, (n, 18, 2))
    j[..., 2] = rng.integers(0, 3, (n, 18))
    if n:
        j[0, 1, :2] = j[0, 0, :2]  # coincident limb endpoints are skipped
        j[0, 2, :2] = [np.nan, 5.0]  # non-finite joints are skipped
        j[-1, 3, :2] = j[-1, 4, :2] + [1e-3, 0.0]  # a tiny limb
    return j


@pytest.mark.parametrize("combine,floor", [("max", 0.0), ("mean", 0.01), ("max", 0.01)])
def test_limbs_and_keypoints_equal_numpy(combine, floor):
    rng = np.random.default_rng(0)
    limbs = SIMPLEPOSE18.limbs_array
    for n in (0, 1, 3, 9):
        j = _random_joints(rng, n)
        xy, lab = j[..., :2], j[..., 2] < 2
        for out_hw in ((64, 64), (48, 80)):
            a = np_render.render_limb_gaussians(xy, lab, limbs, out_hw, 4, 7.0, 0.015, floor,
                                                combine=combine)  # fmt: skip
            b = nb_render.render_limb_gaussians(xy, lab, limbs, out_hw, 4, 7.0, 0.015, floor,
                                                combine=combine)  # fmt: skip
            assert a.dtype == b.dtype == np.float32 and a.shape == b.shape
            np.testing.assert_allclose(b, a, atol=1e-6, rtol=0)
            a = np_render.render_keypoint_gaussians(xy, lab, out_hw, 4, 9.0)
            b = nb_render.render_keypoint_gaussians(xy, lab, out_hw, 4, 9.0)
            assert a.dtype == b.dtype == np.float32 and a.shape == b.shape
            np.testing.assert_allclose(b, a, atol=1e-6, rtol=0)


@pytest.mark.parametrize(
    "codec", [SimplePoseCodec(), SimplePoseCodec(limb_floor=0.01, limb_combine="mean")]
)
def test_encode_equals_codec_encode(codec):
    rng = np.random.default_rng(1)
    for n in (0, 2, 6):
        j = _random_joints(rng, n, -50.0, 560.0)
        mask = rng.random((128, 128)).astype(np.float32)
        for m in (None, mask):
            a = codec.encode(j, (128, 128), m)
            b = nb_render.encode_simplepose(codec, j, (128, 128), m)
            assert a.dtype == b.dtype == np.float32 and a.shape == b.shape == (50, 128, 128)
            np.testing.assert_allclose(b, a, atol=1e-6, rtol=0)


def test_other_stride_and_sigma():
    rng = np.random.default_rng(2)
    j = _random_joints(rng, 4, 0.0, 300.0)
    xy, lab = j[..., :2], j[..., 2] < 2
    a = np_render.render_keypoint_gaussians(xy, lab, (38, 38), 8, 7.0, 0.05)
    b = nb_render.render_keypoint_gaussians(xy, lab, (38, 38), 8, 7.0, 0.05)
    np.testing.assert_allclose(b, a, atol=1e-6, rtol=0)
    limbs = SIMPLEPOSE18.limbs_array
    a = np_render.render_limb_gaussians(xy, lab, limbs, (38, 38), 8, 5.0, 0.02, 0.0, margin=3.0)
    b = nb_render.render_limb_gaussians(xy, lab, limbs, (38, 38), 8, 5.0, 0.02, 0.0, margin=3.0)
    np.testing.assert_allclose(b, a, atol=1e-6, rtol=0)
