"""OpenCV-convention Gaussian kernels and a separable blur that matches
``cv2.GaussianBlur(img, (k, k), 0)`` (SPEC 2.1).

The CPN, MSPN and RSN targets and decoders are defined through OpenCV's ``sigma = 0`` rules,
so this module reproduces them exactly instead of using a generic Gaussian:

* odd ``k`` with a fixed table: binomial-like tables, e.g. ``k = 5 -> [1, 4, 6, 4, 1] / 16`` and
  ``k = 7 -> [2, 7, 14, 18, 14, 7, 2] / 64``;
* otherwise a sampled Gaussian with ``sigma = 0.3 * ((k - 1) / 2 - 1) + 0.8`` (= 0.15 k + 0.35),
  normalised to sum 1;
* border mode reflect-101 (``gfedcb|abcdefgh|gfedcba``), repeated for kernels wider than the image.

Two OpenCV generations disagree on ``k = 9``: the releases the reference code ran on (3.x and
early 4.x) sample the Gaussian with sigma 1.7, while newer releases (``getGaussianKernelBitExact``,
e.g. the OpenCV 5 installed here) use the table ``[4, 13, 30, 51, 60, 51, 30, 13, 4] / 256``.
``convention="legacy"`` (the default, as in SPEC 2.1) gives the former, ``"bitexact"`` the latter;
:func:`installed_cv2_convention` tells which one the installed ``cv2`` follows. All other sizes
agree between the two.

Everything works on the last two axes of an array of any leading shape, in numpy
(:func:`gaussian_blur`) or torch (:func:`gaussian_blur_torch`, for batched decoding on a GPU).
"""

from __future__ import annotations

import functools
import logging

import numpy as np

from simplepose.errors import InputError

LOG = logging.getLogger(__name__)

__all__ = [
    "CONVENTIONS",
    "apply_separable",
    "blur_matrix",
    "border_index",
    "gaussian_blur",
    "gaussian_blur_torch",
    "gaussian_kernel_1d",
    "installed_cv2_convention",
    "opencv_sigma",
    "reflect101_index",
]

CONVENTIONS = ("legacy", "bitexact")

# OpenCV's fixed tables for sigma <= 0 (exact binary fractions).
_TABLES = {
    1: (1.0,),
    3: (0.25, 0.5, 0.25),
    5: (1 / 16, 4 / 16, 6 / 16, 4 / 16, 1 / 16),
    7: (2 / 64, 7 / 64, 14 / 64, 18 / 64, 14 / 64, 7 / 64, 2 / 64),
}
_TABLE_9 = tuple(v / 256 for v in (4, 13, 30, 51, 60, 51, 30, 13, 4))


def opencv_sigma(ksize: int) -> float:
    """OpenCV's automatic sigma for a kernel of size ``ksize``: ``0.3((k-1)/2 - 1) + 0.8``."""
    return 0.3 * ((ksize - 1) * 0.5 - 1.0) + 0.8


def _check_ksize(ksize) -> int:
    k = int(ksize)
    if k != ksize or k < 1 or k % 2 == 0:
        raise InputError(f"Gaussian kernel size must be a positive odd integer, got {ksize!r}")
    return k


def _check_convention(convention: str) -> str:
    if convention not in CONVENTIONS:
        raise InputError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    return convention


@functools.lru_cache(maxsize=64)
def _kernel_cached(ksize: int, sigma: float, convention: str) -> np.ndarray:
    if sigma <= 0:
        if ksize in _TABLES:
            return np.asarray(_TABLES[ksize], dtype=np.float64)
        if ksize == 9 and convention == "bitexact":
            return np.asarray(_TABLE_9, dtype=np.float64)
        sigma = opencv_sigma(ksize)
    x = np.arange(ksize, dtype=np.float64) - (ksize - 1) / 2.0
    g = np.exp(-(x * x) / (2.0 * sigma * sigma))
    return g / g.sum()


def gaussian_kernel_1d(ksize: int, sigma: float = 0.0, convention: str = "legacy") -> np.ndarray:
    """The 1-D kernel ``cv2.getGaussianKernel(ksize, sigma)`` would give.

    Args:
        ksize: odd kernel size.
        sigma: standard deviation in px; ``<= 0`` applies OpenCV's automatic rules.
        convention: ``"legacy"`` (k = 9 sampled with sigma 1.7, SPEC 2.1) or ``"bitexact"``
            (k = 9 from the fixed table, newer OpenCV).

    Returns:
        (ksize,) float64 array summing to 1 (a fresh copy).
    """
    k = _check_ksize(ksize)
    return _kernel_cached(k, float(sigma), _check_convention(convention)).copy()


@functools.lru_cache(maxsize=1)
def installed_cv2_convention() -> str:
    """Which k = 9 rule the installed ``cv2`` follows: ``"bitexact"`` or ``"legacy"``."""
    import cv2  # lazy: only needed to probe the installed OpenCV

    k9 = cv2.getGaussianKernel(9, 0).ravel()
    return "bitexact" if abs(float(k9[0]) - 4 / 256) < 1e-12 else "legacy"


def reflect101_index(idx: np.ndarray, n: int) -> np.ndarray:
    """Map integer positions onto ``[0, n)`` with OpenCV's BORDER_REFLECT_101, repeated as
    often as needed (``borderInterpolate``): ``-1 -> 1``, ``n -> n - 2``."""
    idx = np.asarray(idx, dtype=np.int64)
    if n == 1:
        return np.zeros_like(idx)
    period = 2 * (n - 1)
    j = np.mod(idx, period)
    return np.where(j >= n, period - j, j)


def border_index(n: int, radius: int, border: str) -> tuple[np.ndarray, np.ndarray]:
    """Source indices and a validity mask for padding a length-``n`` axis by ``radius``.

    Returns ``(index (n + 2r,), valid (n + 2r,) bool)``; for ``border="constant"`` the padded
    positions are marked invalid (they read as 0), for ``"reflect101"`` every position is valid.
    """
    pos = np.arange(-radius, n + radius, dtype=np.int64)
    if border == "reflect101":
        return reflect101_index(pos, n), np.ones(pos.shape, dtype=bool)
    if border == "constant":
        valid = (pos >= 0) & (pos < n)
        return np.clip(pos, 0, n - 1), valid
    raise InputError(f"border must be 'reflect101' or 'constant', got {border!r}")


@functools.lru_cache(maxsize=64)
def _blur_matrix_cached(n: int, ksize: int, sigma: float, convention: str, border: str, pad: int):
    k = _kernel_cached(ksize, sigma, convention)
    r = (ksize - 1) // 2
    n_out = n + 2 * pad
    # Blur of the zero-padded axis (length n_out, reflect-101/constant at *its* ends), restricted
    # to the columns of the n real samples.
    idx, valid = border_index(n_out, r, border)
    taps = np.arange(n_out)[:, None] + np.arange(ksize)[None, :]  # (n_out, k) into idx
    src = idx[taps] - pad  # source sample of each tap, -pad.. in the unpadded frame
    ok = valid[taps] & (src >= 0) & (src < n)
    mat = np.zeros((n_out, n), dtype=np.float64)
    rows = np.broadcast_to(np.arange(n_out)[:, None], taps.shape)
    np.add.at(mat, (rows[ok], src[ok]), np.broadcast_to(k, taps.shape)[ok])
    mat.setflags(write=False)
    return mat


def blur_matrix(
    n: int,
    ksize: int,
    sigma: float = 0.0,
    convention: str = "legacy",
    border: str = "reflect101",
    pad: int = 0,
) -> np.ndarray:
    """The 1-D blur of a length-``n`` axis as a matrix, optionally of the zero-padded axis.

    Row ``i`` gives output sample ``i`` of ``cv2.GaussianBlur`` applied along an axis that was
    first zero-padded by ``pad`` on both sides (so the output has ``n + 2 pad`` samples), as a
    combination of the ``n`` input samples. ``y = A_h @ x @ A_w.T`` is then the 2-D blur of an
    (H, W) map ``x``; for the small maps of pose decoding this runs as two BLAS matrix products.

    Returns:
        (n + 2 pad, n) float64 read-only array.
    """
    if n < 1 or pad < 0:
        raise InputError(f"blur_matrix: need n >= 1 and pad >= 0, got n={n}, pad={pad}")
    if border not in ("reflect101", "constant"):
        raise InputError(f"border must be 'reflect101' or 'constant', got {border!r}")
    k = _check_ksize(ksize)
    return _blur_matrix_cached(
        int(n), k, float(sigma), _check_convention(convention), border, int(pad)
    )


def apply_separable(x: np.ndarray, a_h: np.ndarray, a_w: np.ndarray) -> np.ndarray:
    """``a_h @ x @ a_w.T`` for every (H, W) map of an (..., H, W) array -> (..., H', W').

    Written as two plain 2-D matrix products (numpy's stacked ``matmul`` falls off BLAS for some
    shapes and can be 10x slower).
    """
    lead = x.shape[:-2]
    h, w = x.shape[-2:]
    m = int(np.prod(lead, dtype=np.int64))
    t = (x.reshape(m * h, w) @ a_w.T).reshape(m, h, a_w.shape[0])
    t = t.transpose(0, 2, 1).reshape(m * a_w.shape[0], h) @ a_h.T
    t = t.reshape(m, a_w.shape[0], a_h.shape[0]).transpose(0, 2, 1)
    return np.ascontiguousarray(t).reshape(*lead, a_h.shape[0], a_w.shape[0])


def _blur_axis(x: np.ndarray, kernel: np.ndarray, axis: int, border: str) -> np.ndarray:
    """Correlate ``x`` with a symmetric 1-D kernel along ``axis`` (same-size output)."""
    n = x.shape[axis]
    r = (kernel.size - 1) // 2
    idx, valid = border_index(n, r, border)
    padded = np.take(x, idx, axis=axis)
    if not valid.all():
        shape = [1] * x.ndim
        shape[axis] = valid.size
        padded = padded * valid.reshape(shape)
    out = np.zeros_like(x)
    sl = [slice(None)] * x.ndim
    for j, w in enumerate(kernel):
        sl[axis] = slice(j, j + n)
        out += w * padded[tuple(sl)]
    return out


# Up to this axis length the blur runs as two matrix products (BLAS), beyond it tap by tap.
_MATMUL_MAX_LEN = 256


def gaussian_blur(
    x: np.ndarray,
    ksize: int,
    sigma: float = 0.0,
    convention: str = "legacy",
    border: str = "reflect101",
) -> np.ndarray:
    """Separable Gaussian blur over the last two axes, matching ``cv2.GaussianBlur``.

    Args:
        x: (..., H, W) real array (e.g. heatmaps in heatmap px); any leading shape.
        ksize: odd kernel size (square kernel).
        sigma: <= 0 for OpenCV's automatic rules (see :func:`gaussian_kernel_1d`).
        convention: ``"legacy"`` or ``"bitexact"`` (only matters for k = 9).
        border: ``"reflect101"`` (OpenCV's default) or ``"constant"`` (zeros outside).

    Returns:
        (..., H, W) array; float32 input stays float32, anything else is computed and returned
        in float64. Rows are filtered first, then columns, as OpenCV does.
    """
    x = np.asarray(x)
    if x.ndim < 2 or x.shape[-1] == 0 or x.shape[-2] == 0:
        raise InputError(f"gaussian_blur needs a (..., H, W) array with H, W > 0, got {x.shape}")
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise InputError(f"gaussian_blur needs a real numeric array, got dtype {x.dtype}")
    out_dtype = np.float32 if x.dtype == np.float32 else np.float64
    k = gaussian_kernel_1d(ksize, sigma, convention)
    h, w = x.shape[-2:]
    xf = x.astype(np.float64, copy=False)
    if max(h, w) <= _MATMUL_MAX_LEN:
        a_h = blur_matrix(h, ksize, sigma, convention, border)
        a_w = blur_matrix(w, ksize, sigma, convention, border)
        y = apply_separable(xf, a_h, a_w)
    else:
        y = _blur_axis(xf, k, axis=x.ndim - 1, border=border)
        y = _blur_axis(y, k, axis=x.ndim - 2, border=border)
    return y.astype(out_dtype, copy=False)


def gaussian_blur_torch(
    x,
    ksize: int,
    sigma: float = 0.0,
    convention: str = "legacy",
    border: str = "reflect101",
):
    """Torch version of :func:`gaussian_blur` for (..., H, W) tensors on any device.

    Padding is done by index gathering (so reflect-101 also works when the kernel is wider than
    the map, unlike ``F.pad(mode="reflect")``), then two 1-D convolutions. The result keeps the
    input's dtype (integer input is promoted to float32) and device.
    """
    import torch  # lazy: the numpy path must not pull torch in
    import torch.nn.functional as F

    if x.ndim < 2 or x.shape[-1] == 0 or x.shape[-2] == 0:
        raise InputError(
            f"gaussian_blur_torch needs (..., H, W) with H, W > 0, got {tuple(x.shape)}"
        )
    if not torch.is_floating_point(x):
        x = x.float()
    k = gaussian_kernel_1d(ksize, sigma, convention)
    k = torch.as_tensor(k, dtype=x.dtype, device=x.device)
    lead = x.shape[:-2]
    h, w = x.shape[-2:]
    r = (k.numel() - 1) // 2
    y = x.reshape(-1, 1, h, w)
    for axis, n in ((3, w), (2, h)):
        idx, valid = border_index(n, r, border)
        idx_t = torch.as_tensor(idx, device=x.device)
        y = torch.index_select(y, axis, idx_t)
        if not valid.all():
            shape = [1, 1, 1, 1]
            shape[axis] = valid.size
            y = y * torch.as_tensor(valid, dtype=x.dtype, device=x.device).reshape(shape)
        weight = k.reshape(1, 1, 1, -1) if axis == 3 else k.reshape(1, 1, -1, 1)
        y = F.conv2d(y, weight)
    return y.reshape(*lead, h, w)
