"""OpenCV-convention Gaussian kernels and blur (simplepose.codecs.cv2_gaussian) against cv2."""

import cv2
import numpy as np
import pytest

from simplepose.codecs.cv2_gaussian import (
    apply_separable,
    blur_matrix,
    gaussian_blur,
    gaussian_blur_torch,
    gaussian_kernel_1d,
    installed_cv2_convention,
    opencv_sigma,
    reflect101_index,
)
from simplepose.errors import InputError

KSIZES = (5, 7, 9, 15, 21, 23)


@pytest.mark.parametrize("k", KSIZES)
def test_kernel_matches_cv2(k):
    ours = gaussian_kernel_1d(k, convention=installed_cv2_convention())
    ref = cv2.getGaussianKernel(k, 0).ravel()
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-15)
    assert ours.sum() == pytest.approx(1.0, abs=1e-15)


def test_kernel_tables_and_sigmas_from_spec():
    np.testing.assert_array_equal(gaussian_kernel_1d(5) * 16, [1, 4, 6, 4, 1])
    np.testing.assert_array_equal(gaussian_kernel_1d(7) * 64, [2, 7, 14, 18, 14, 7, 2])
    np.testing.assert_array_equal(gaussian_kernel_1d(9, convention="bitexact") * 256,
                                  [4, 13, 30, 51, 60, 51, 30, 13, 4])  # fmt: skip
    for k, sigma in {9: 1.7, 11: 2.0, 13: 2.3, 15: 2.6, 17: 2.9, 21: 3.5, 23: 3.8}.items():
        assert opencv_sigma(k) == pytest.approx(sigma)
        x = np.arange(k) - (k - 1) / 2
        g = np.exp(-(x**2) / (2 * sigma**2))
        # legacy (SPEC 2.1, the OpenCV of the reference code): k = 9 is sampled with sigma 1.7 too
        legacy = gaussian_kernel_1d(k, convention="legacy")
        np.testing.assert_allclose(legacy, g / g.sum(), atol=1e-15)


def test_kernel_rejects_bad_sizes():
    for bad in (0, 4, -3, 2.5):
        with pytest.raises(InputError):
            gaussian_kernel_1d(bad)
    with pytest.raises(InputError):
        gaussian_kernel_1d(5, convention="opencv3")


def test_reflect101_matches_cv2_border_interpolate():
    for n in (1, 2, 3, 7):
        pos = np.arange(-25, 25 + n)
        ref = [cv2.borderInterpolate(int(p), n, cv2.BORDER_REFLECT_101) for p in pos]
        np.testing.assert_array_equal(reflect101_index(pos, n), ref)


@pytest.mark.parametrize("k", KSIZES)
@pytest.mark.parametrize("shape", [(64, 48), (84, 68), (5, 3), (1, 9), (300, 7)])
def test_blur_matches_cv2(k, shape):
    rng = np.random.default_rng(k * 100 + shape[0])
    img = rng.random(shape) * 255
    conv = installed_cv2_convention()
    for dtype, tol in ((np.float64, 1e-9), (np.float32, 2e-4)):
        x = img.astype(dtype)
        ours = gaussian_blur(x, k, convention=conv)
        assert ours.dtype == dtype
        np.testing.assert_allclose(ours, cv2.GaussianBlur(x, (k, k), 0), rtol=0, atol=tol)


def test_blur_of_impulse_and_batch_axes():
    maps = np.zeros((2, 3, 64, 48))
    maps[0, 1, 0, 1] = 255.0  # next to a corner: reflect-101 folds the kernel back
    maps[1, 2, 30, 20] = 255.0
    out = gaussian_blur(maps, 7, convention=installed_cv2_convention())
    for i in range(2):
        for j in range(3):
            ref = cv2.GaussianBlur(maps[i, j], (7, 7), 0)
            np.testing.assert_allclose(out[i, j], ref, atol=1e-9)


def test_constant_border_is_zero_padding():
    x = np.random.default_rng(0).random((10, 12))
    padded = np.zeros((30, 32))
    padded[10:20, 10:22] = x
    ref = gaussian_blur(padded, 9)[10:20, 10:22]
    np.testing.assert_allclose(gaussian_blur(x, 9, border="constant"), ref, atol=1e-12)


def test_torch_blur_matches_numpy():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(1).random((2, 3, 20, 17))
    for k in (5, 9, 21, 41):
        for border in ("reflect101", "constant"):
            ref = gaussian_blur(x, k, border=border)
            got = gaussian_blur_torch(torch.from_numpy(x), k, border=border).numpy()
            np.testing.assert_allclose(got, ref, atol=1e-12)
    got32 = gaussian_blur_torch(torch.from_numpy(x.astype(np.float32)), 5)
    assert got32.dtype == torch.float32


def test_blur_rejects_bad_input():
    with pytest.raises(InputError):
        gaussian_blur(np.zeros(5), 5)
    with pytest.raises(InputError):
        gaussian_blur(np.zeros((0, 4)), 5)
    with pytest.raises(InputError):
        gaussian_blur(np.zeros((4, 4)), 5, border="wrap")


@pytest.mark.parametrize("k", (5, 9, 21))
def test_blur_matrix_equals_cv2_on_zero_padded_maps(k):
    """The decoder's "zero-pad by 10, then GaussianBlur" as two matrix products."""
    conv = installed_cv2_convention()
    x = np.random.default_rng(k).random((3, 64, 48)) * 255
    a_h = blur_matrix(64, k, convention=conv, pad=10)
    a_w = blur_matrix(48, k, convention=conv, pad=10)
    assert a_h.shape == (84, 64) and a_w.shape == (68, 48)
    got = apply_separable(x, a_h, a_w)
    for i in range(3):
        ref = cv2.GaussianBlur(np.pad(x[i], 10), (k, k), 0)
        np.testing.assert_allclose(got[i], ref, atol=1e-9)
