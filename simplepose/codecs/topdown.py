"""Top-down heatmap codec of CPN, MSPN and RSN ("Megvii" heatmaps, SPEC 2.2, 4.2, 4.6, 5.2, 5.6).

One :class:`TopDownHeatmapCodec` object holds every constant of one representation (input
size, heatmap size and stride, target kernels, decode kernel), and is shared by the training
pipeline (:meth:`~TopDownHeatmapCodec.encode`) and the predictor
(:meth:`~TopDownHeatmapCodec.decode`), so they cannot drift apart. Build one with
:func:`cpn_codec`, :func:`mspn_codec`, :func:`rsn_codec` or :func:`build_codec` by name
(``"cpn_256x192"``, ``"mspn_384x288"``, ...).

Coordinate frames:

* **input px**: pixels of the network input crop (e.g. 192 wide, 256 high), the frame of the
  keypoints given to ``encode`` and of the coordinates ``decode`` returns;
* **heatmap px**: cells of the output maps (e.g. 48 x 64, stride 4); cell ``c`` covers input px
  ``[4c, 4c + 4)`` and decodes to its centre ``4c + 2``;
* **original px**: the full image; ``decode(..., inverse_affine=M_inv)`` maps there with the
  inverse of the crop's affine (see :mod:`simplepose.data.topdown_transforms`).

Encoding (reference convention, needed to use or reproduce reference weights): the impulse of
each labelled keypoint sits at the *floor* cell ``(floor(y H_out / H_in), floor(x W_out / W_in))``,
is blurred with the OpenCV ``sigma = 0`` kernel of each size in ``kernels`` and scaled so that
its peak is 255. Sub-cell position is therefore lost by design: a perfect target decodes to the
cell centre, at most ``2 sqrt(2)`` input px (stride 4) from the true point.

Decoding (SPEC 4.6 / 5.6): average with the flipped-back, L/R-swapped heatmaps of the mirrored
crop (no pixel shift), keep ``score_map = h / 255 + 0.5``, (CPN only) divide each channel by its
maximum, zero-pad by 10, blur (CPN 21 x 21, MSPN/RSN 5 x 5), take the argmax, shift 0.25 cell
toward the second maximum, clamp, map the cell to input px (``4x + 2``) and read the score at the
rounded location of the unblurred averaged map.

Multi-shift test (MSPN's ``TEST.SHIFT_RATIOS``; ``shift_ratios``, default ``(0.25,)`` = the single
quarter shift above): after the argmax, for each ratio ``r_j`` in turn the position moves ``r_j``
heatmap px toward the next maximum not visited yet (the 2nd, 3rd, ... largest value), along the
unit vector from the *current* (already shifted) position. MSPN's COCO and MPII figures use one
ratio, 0.25; a longer list such as ``(0.25, 0.1)`` is the "multi-shift" option.

Reference biases fixed by default (SPEC 11), each behind a flag for bit-parity:

* ``reference_refine=False``: the reference takes the first argmax in raster order and one
  second argmax. On a blurred single-cell peak the four neighbours tie, so the 0.25 shift always
  goes up (MSPN/RSN, dy = -1 input px) or left (CPN), and a peak split evenly over two cells is
  assigned to the upper/left one. The clean refinement (a) takes the centroid of cells tied for
  the maximum in the 3 x 3 neighbourhood of the peak, and otherwise (b) shifts 0.25 cell along
  the mean direction of all neighbours tied for the largest neighbour value, so symmetric peaks
  are not shifted at all. Further ratios of ``shift_ratios`` move toward the next-largest
  not-yet-visited cells of the same 3 x 3 neighbourhood, all tied ones at once (see
  :func:`_refine_clean`; on a blurred single-cell peak the reference's next maxima are those
  neighbours too, taken one at a time in raster order among ties); a plateau's centroid is not
  moved further. It also searches the first maximum inside the heatmap only (the
  reference can pick a cell of the zero padding when a map is all negative) and does not divide
  by a non-positive channel maximum (the reference then inverts the map or produces NaN).
* ``reference_border=False``: the reference renders targets with ``cv2.GaussianBlur``'s
  reflect-101 border, which folds the Gaussian of a keypoint in the first or last cell(s) back
  onto the map and moves its peak onto the border cell (e.g. k = 5 and a keypoint in cell 1:
  cell 0 gets 8/16 of the mass, cell 1 only 6/16). The clean target is the Gaussian truncated at
  the border, whose peak is always 255 at the floor cell; for keypoints more than k // 2 cells
  from every edge the two are identical.

Residual border effect (shared with the references, not changed here): within about a kernel
radius of the crop border the target is truncated and the decoder's zero-padded blur pulls the
peak inward, by up to about one cell for CPN's 21 x 21 blur (measured on perfect targets).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from simplepose.codecs.cv2_gaussian import (
    apply_separable,
    blur_matrix,
    border_index,
    gaussian_kernel_1d,
)
from simplepose.errors import InputError
from simplepose.geometry import apply_affine
from simplepose.skeleton import COCO_FLIP_INDEX

LOG = logging.getLogger(__name__)

__all__ = [
    "CODECS",
    "MAX_SHIFT_RATIOS",
    "TopDownHeatmapCodec",
    "build_codec",
    "check_shift_ratios",
    "cpn_codec",
    "layout_codec",
    "layout_codec_fields",
    "mspn_codec",
    "rsn_codec",
]

#: most ratios of a multi-shift decode (``TopDownHeatmapCodec.shift_ratios``)
MAX_SHIFT_RATIOS = 8


def check_shift_ratios(ratios, where: str = "shift_ratios") -> tuple[float, ...]:
    """``ratios`` (a number or a sequence of numbers) as a tuple of 1 to
    :data:`MAX_SHIFT_RATIOS` floats, each finite and in [0, 1), heatmap px.

    Raises:
        InputError: naming ``where`` (e.g. ``"--shift-ratios"``) and the bad value.
    """
    if isinstance(ratios, (int, float, np.number)) and not isinstance(ratios, bool):
        ratios = (ratios,)
    try:
        values = tuple(ratios)
        if any(isinstance(r, (bool, str, bytes)) for r in values):
            raise TypeError
        out = tuple(float(r) for r in values)
    except (TypeError, ValueError):
        raise InputError(f"{where} must be a list of numbers, got {ratios!r}") from None
    if not 1 <= len(out) <= MAX_SHIFT_RATIOS:
        raise InputError(
            f"{where} must hold 1 to {MAX_SHIFT_RATIOS} ratios, got {len(out)}: {list(out)}"
        )
    bad = [r for r in out if not 0.0 <= r < 1.0]  # also NaN
    if bad:
        raise InputError(f"{where}: every ratio must be finite and in [0, 1), got {bad[0]!r}")
    return out


# 3 x 3 neighbourhood offsets (dy, dx) without the centre, used by the clean refinement.
_NB_DY = np.array([-1, -1, -1, 0, 0, 1, 1, 1], dtype=np.int64)
_NB_DX = np.array([-1, 0, 1, -1, 1, -1, 0, 1], dtype=np.int64)
_NB_LEN = np.hypot(_NB_DY, _NB_DX)


@dataclass(frozen=True)
class TopDownHeatmapCodec:
    """Encode keypoints into multi-kernel "Megvii" heatmaps and decode heatmaps into keypoints.

    Attributes:
        name: identifier, e.g. ``"cpn_256x192"``.
        input_hw: (H_in, W_in) of the network input crop, input px.
        heatmap_hw: (H_out, W_out) of the output heatmaps, heatmap px.
        kernels: OpenCV kernel sizes of the target maps, in the order of ``encode``'s first axis.
        level_targets: for each prediction level, ordered coarsest -> finest, the index into
            ``kernels`` of its target (CPN GlobalNet levels; MSPN/RSN units of non-last stages).
        last_stage_targets: MSPN/RSN units of the last stage with coarse-to-fine supervision
            (SPEC 5.4), or ``None`` (CPN).
        refine_target: index into ``kernels`` of the final prediction's target (CPN RefineNet
            gk7; MSPN/RSN finest unit of the last stage).
        decode_kernel: blur kernel of the decoder (CPN 21, MSPN/RSN 5).
        normalize_before_blur: divide each channel by its maximum before the blur (CPN).
        pad: zero padding of the decoder, heatmap px.
        shift_ratios: sub-cell shifts, heatmap px: the first toward the second maximum, each
            next one toward the next maximum not visited yet (1 to 8 ratios, each in [0, 1);
            ``(0.25,)``: the single quarter shift of every reference figure). Serialised codecs
            of older versions store one float ``shift``: :meth:`upgrade_fields` reads it.
        peak_value: target peak (255); the score is ``h / peak_value + score_offset``.
        score_offset: 0.5 in the references.
        flip_index: keypoint permutation under a horizontal flip.
        kernel_convention: ``"legacy"`` or ``"bitexact"`` OpenCV k = 9 rule (see cv2_gaussian).
        reference_border: render targets with cv2's reflect-101 border (see module docstring).
        reference_refine: decode with the reference's raster-order argmax refinement.
        tie_rtol: relative tolerance under which two blurred values count as tied (clean decode).
    """

    name: str
    input_hw: tuple[int, int]
    heatmap_hw: tuple[int, int]
    kernels: tuple[int, ...]
    level_targets: tuple[int, ...]
    last_stage_targets: tuple[int, ...] | None
    refine_target: int
    decode_kernel: int
    normalize_before_blur: bool
    pad: int = 10
    shift_ratios: tuple[float, ...] = (0.25,)
    peak_value: float = 255.0
    score_offset: float = 0.5
    flip_index: tuple[int, ...] = COCO_FLIP_INDEX
    kernel_convention: str = "legacy"
    reference_border: bool = False
    reference_refine: bool = False
    tie_rtol: float = 1e-9

    def __post_init__(self):
        (hi, wi), (ho, wo) = self.input_hw, self.heatmap_hw
        if min(hi, wi, ho, wo) <= 0:
            raise InputError(
                f"{self.name}: sizes must be positive, got {self.input_hw}, {self.heatmap_hw}"
            )
        for k in tuple(self.kernels) + (self.decode_kernel,):
            gaussian_kernel_1d(k, 0.0, self.kernel_convention)  # validates k and the convention
        n = len(self.kernels)
        idx = (
            tuple(self.level_targets) + (self.refine_target,) + tuple(self.last_stage_targets or ())
        )
        if any(not 0 <= i < n for i in idx):
            raise InputError(f"{self.name}: target indices {idx} out of range for {n} kernels")
        if sorted(self.flip_index) != list(range(len(self.flip_index))):
            raise InputError(f"{self.name}: flip_index is not a permutation: {self.flip_index}")
        ratios = check_shift_ratios(self.shift_ratios, f"{self.name}: shift_ratios")
        object.__setattr__(self, "shift_ratios", ratios)

    @staticmethod
    def upgrade_fields(fields: Mapping) -> dict:
        """Serialised fields (:func:`simplepose.spec.codec_to_dict`) of an older simplepose ->
        today's: the one ratio ``shift: 0.25`` stored before multi-shift decoding becomes
        ``shift_ratios: [0.25]``. Other fields are returned unchanged.

        Raises:
            InputError: both ``shift`` and ``shift_ratios`` are given.
        """
        out = dict(fields)
        if "shift" in out:
            if "shift_ratios" in out:
                raise InputError(
                    f"codec {out.get('name', 'topdown_heatmap')}: give shift_ratios, not both it "
                    f"and the old single shift ({out['shift']!r})"
                )
            old = out.pop("shift")
            out["shift_ratios"] = list(old) if isinstance(old, (list, tuple)) else [old]
        return out

    # ------------------------------------------------------------------ geometry
    @property
    def num_keypoints(self) -> int:
        return len(self.flip_index)

    @property
    def num_kernels(self) -> int:
        return len(self.kernels)

    @property
    def stride_xy(self) -> tuple[float, float]:
        """(sx, sy): input px per heatmap px along x and y (4, 4 for every reference model)."""
        return (self.input_hw[1] / self.heatmap_hw[1], self.input_hw[0] / self.heatmap_hw[0])

    @property
    def input_size(self) -> tuple[int, int]:
        """(W_in, H_in), the ``output_size`` argument of the top-down affine transforms."""
        return (self.input_hw[1], self.input_hw[0])

    def with_options(self, **changes) -> TopDownHeatmapCodec:
        """A copy with some fields changed, e.g. ``codec.with_options(reference_refine=True)``."""
        return replace(self, **changes)

    def keypoint_cells(self, keypoints: np.ndarray) -> np.ndarray:
        """Floor cells of keypoints: (..., 2) input px (x, y) -> (..., 2) int64 heatmap px."""
        kp = np.asarray(keypoints, dtype=np.float64)
        ho, wo = self.heatmap_hw
        hi, wi = self.input_hw
        with np.errstate(invalid="ignore"):
            cx = np.floor(kp[..., 0] * wo / wi)
            cy = np.floor(kp[..., 1] * ho / hi)
        cells = np.stack([cx, cy], axis=-1)
        return np.where(np.isfinite(cells), cells, -1).astype(np.int64)

    def cells_to_input(self, cells_xy: np.ndarray) -> np.ndarray:
        """Heatmap px (x, y) (float, sub-cell allowed) -> input px: ``s x + s / 2`` (4x + 2)."""
        sx, sy = self.stride_xy
        c = np.asarray(cells_xy, dtype=np.float64)
        return np.stack([c[..., 0] * sx + sx / 2.0, c[..., 1] * sy + sy / 2.0], axis=-1)

    # ------------------------------------------------------------------ encode
    def _profiles(self, centres: np.ndarray, n: int, ksize: int) -> np.ndarray:
        """1-D blurred impulse profiles: (K,) int cells -> (K, n) float64, one row per centre."""
        g = gaussian_kernel_1d(ksize, 0.0, self.kernel_convention)
        r = (ksize - 1) // 2
        border = "reflect101" if self.reference_border else "constant"
        idx, valid = border_index(n, r, border)
        src = np.where(valid, idx, -1)
        # taps[i, j]: the source cell that tap j of output cell i reads (-1: zero padding).
        taps = src[np.arange(n)[:, None] + np.arange(ksize)[None, :]]
        hit = taps[None, :, :] == centres[:, None, None]  # (K, n, k)
        return hit.astype(np.float64) @ g

    def encode(self, keypoints: np.ndarray, visible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Render the training targets of one instance.

        Args:
            keypoints: (K, 2) keypoint (x, y) in input px.
            visible: (K,) visibility flags (COCO v: 0 unlabelled, 1 occluded, 2 visible; any
                value > 0 counts as labelled).

        Returns:
            targets: (num_kernels, K, H_out, W_out) float32; for each labelled keypoint whose
                floor cell lies on the heatmap, the blurred impulse scaled to peak 255, else 0.
            weights: (K,) float32, the visibility flag where a target was rendered and 0 where
                not (unlabelled, non-finite or off the heatmap). Losses use ``weights > 1``
                (visible only) or ``weights > 0`` (labelled) as in SPEC 4.4 / 5.4.
        """
        kp = np.asarray(keypoints, dtype=np.float64)
        vis = np.asarray(visible, dtype=np.float64)
        if kp.ndim != 2 or kp.shape[1] != 2:
            raise InputError(f"{self.name}.encode: keypoints must be (K, 2), got {kp.shape}")
        if vis.shape != (kp.shape[0],):
            raise InputError(
                f"{self.name}.encode: visible must be ({kp.shape[0]},), got {vis.shape}"
            )
        ho, wo = self.heatmap_hw
        cells = self.keypoint_cells(kp)
        ok = (
            (np.nan_to_num(vis) > 0)
            & np.isfinite(kp).all(axis=1)
            & (cells[:, 0] >= 0) & (cells[:, 0] < wo)
            & (cells[:, 1] >= 0) & (cells[:, 1] < ho)
        )  # fmt: skip
        num_k = kp.shape[0]
        targets = np.zeros((self.num_kernels, num_k, ho, wo), dtype=np.float32)
        ids = np.flatnonzero(ok)
        if ids.size:
            for t, ksize in enumerate(self.kernels):
                px = self._profiles(cells[ids, 0], wo, ksize)  # (n, W)
                py = self._profiles(cells[ids, 1], ho, ksize)  # (n, H)
                peak = px.max(axis=1) * py.max(axis=1)
                maps = py[:, :, None] * px[:, None, :] * (self.peak_value / peak)[:, None, None]
                targets[t, ids] = maps
        weights = np.where(ok, vis, 0.0).astype(np.float32)
        return targets, weights

    def encode_batch(
        self, keypoints: np.ndarray, visible: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`encode` over instances: (N, K, 2), (N, K) -> (N, num_kernels, K, H, W), (N, K)."""
        kp = np.asarray(keypoints)
        vis = np.asarray(visible)
        if kp.ndim != 3 or vis.shape != kp.shape[:2]:
            raise InputError(
                f"{self.name}.encode_batch: need (N, K, 2) and (N, K), "
                f"got {kp.shape}, {vis.shape}"
            )
        out = [self.encode(k, v) for k, v in zip(kp, vis)]
        ho, wo = self.heatmap_hw
        if not out:
            return (np.zeros((0, self.num_kernels, kp.shape[1], ho, wo), np.float32),
                    np.zeros((0, kp.shape[1]), np.float32))  # fmt: skip
        return np.stack([o[0] for o in out]), np.stack([o[1] for o in out])

    # ------------------------------------------------------------------ decode
    def flip_back(self, heatmaps: np.ndarray) -> np.ndarray:
        """Heatmaps of a mirrored crop -> the un-mirrored frame: flip W and swap L/R channels.

        (..., K, H, W) -> (..., K, H, W); no pixel shift (SPEC 2.4). An involution.
        """
        h = np.asarray(heatmaps)
        if h.shape[-3] != self.num_keypoints:
            raise InputError(
                f"{self.name}.flip_back: need {self.num_keypoints} channels, got {h.shape}"
            )
        return h[..., list(self.flip_index), :, ::-1]

    def _as_maps(self, heatmaps, what: str) -> np.ndarray:
        if hasattr(heatmaps, "detach"):  # torch tensor
            heatmaps = heatmaps.detach().cpu().numpy()
        h = np.asarray(heatmaps, dtype=np.float64)
        if h.ndim == 3:
            h = h[None]
        if h.ndim != 4 or tuple(h.shape[-2:]) != tuple(self.heatmap_hw):
            raise InputError(
                f"{self.name}.decode: {what} must be (N, K, {self.heatmap_hw[0]}, "
                f"{self.heatmap_hw[1]}), got {h.shape}"
            )
        return h

    def decode(
        self,
        heatmaps,
        flip_heatmaps=None,
        inverse_affine: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Decode heatmaps into keypoints (SPEC 4.6 for CPN, 5.6 for MSPN/RSN).

        Args:
            heatmaps: (N, K, H_out, W_out) (or (K, H, W)) network output for the crops, in the
                target scale (peak 255); numpy array or torch tensor.
            flip_heatmaps: optional output for the horizontally mirrored crops, same shape; it is
                flipped back (W reversed, L/R channels swapped, no shift) and averaged in.
            inverse_affine: optional (2, 3) or (N, 2, 3) matrices from input px to original px;
                when given, the returned coordinates are in original px.

        Returns:
            coords: (N, K, 2) float64 (x, y) in input px (original px with ``inverse_affine``).
            scores: (N, K) float64, ``h / 255 + 0.5`` of the averaged unblurred map at the
                rounded decoded cell.
        """
        h = self._as_maps(heatmaps, "heatmaps")
        if flip_heatmaps is not None:
            hf = self._as_maps(flip_heatmaps, "flip_heatmaps")
            if hf.shape != h.shape:
                raise InputError(
                    f"{self.name}.decode: flip_heatmaps {hf.shape} != heatmaps {h.shape}"
                )
            h = 0.5 * (h + self.flip_back(hf))
        n, k, ho, wo = h.shape
        maps = h.reshape(n * k, ho, wo)
        score_maps = maps / self.peak_value + self.score_offset

        work = maps
        if self.normalize_before_blur:
            mx = maps.max(axis=(1, 2), keepdims=True)
            if self.reference_refine:
                with np.errstate(divide="ignore", invalid="ignore"):
                    work = maps / mx
            else:
                work = maps / np.where(mx > 0, mx, 1.0)
        # Zero-pad by ``pad`` and blur (reflect-101 at the padded border, as cv2 does), written
        # as two matrix products on the unpadded maps: (Hp, H) @ (M, H, W) @ (W, Wp).
        b = self.pad
        a_h = blur_matrix(ho, self.decode_kernel, 0.0, self.kernel_convention, pad=b)
        a_w = blur_matrix(wo, self.decode_kernel, 0.0, self.kernel_convention, pad=b)
        if self.reference_refine:
            blurred = apply_separable(work, a_h, a_w)  # (M, H + 2b, W + 2b)
            x, y = _refine_reference(blurred, self.shift_ratios)
            x, y = x - b, y - b
        else:
            # The clean refinement only reads cells of the heatmap itself.
            blurred = apply_separable(work, a_h[b:b + ho], a_w[b:b + wo])  # (M, H, W)
            x, y = _refine_clean(blurred, self.shift_ratios, self.tie_rtol)
        x = np.clip(x, 0, wo - 1)
        y = np.clip(y, 0, ho - 1)
        if self.reference_refine:  # Python 3 round(): half to even
            ix, iy = np.rint(x).astype(np.int64), np.rint(y).astype(np.int64)
        else:
            ix, iy = np.floor(x + 0.5).astype(np.int64), np.floor(y + 0.5).astype(np.int64)
        ix, iy = np.clip(ix, 0, wo - 1), np.clip(iy, 0, ho - 1)
        scores = score_maps[np.arange(n * k), iy, ix].reshape(n, k)
        coords = self.cells_to_input(np.stack([x, y], axis=-1)).reshape(n, k, 2)
        if inverse_affine is not None:
            coords = apply_affine(coords, inverse_affine)
        return coords, scores


def _refine_reference(
    blurred: np.ndarray, ratios: tuple[float, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """The reference's argmax + shifts on (M, Hp, Wp) padded blurred maps -> padded-frame x, y.

    The first argmax (raster order) gives the integer position; it is zeroed, then for each ratio
    ``r`` the next argmax of the map (every maximum visited so far zeroed) moves the current float
    position by ``r`` along the unit vector toward it (no move when it is within 1e-3 cell).
    """
    m, _hp, wp = blurred.shape
    flat = blurred.reshape(m, -1).copy()
    rows = np.arange(m)
    i1 = flat.argmax(axis=1)
    flat[rows, i1] = 0.0
    y, x = np.divmod(i1, wp)
    for r in ratios:
        i2 = flat.argmax(axis=1)
        flat[rows, i2] = 0.0
        y2, x2 = np.divmod(i2, wp)
        dx, dy = (x2 - x).astype(np.float64), (y2 - y).astype(np.float64)
        ln = np.hypot(dx, dy)
        move = ln > 1e-3
        safe = np.where(move, ln, 1.0)
        x = x + np.where(move, r * dx / safe, 0.0)
        y = y + np.where(move, r * dy / safe, 0.0)
    return x, y


def _refine_clean(
    blurred: np.ndarray, ratios: tuple[float, ...], rtol: float
) -> tuple[np.ndarray, np.ndarray]:
    """Tie-robust refinement on (M, H, W) blurred maps (the heatmap part of the zero-padded
    blur) -> x, y in heatmap px.

    1. The peak is the maximum inside the heatmap (first in raster order).
    2. If in-map cells of its 3 x 3 neighbourhood tie with it (a peak split over 2 or 4 cells,
       e.g. by flip averaging), the first step gives the centroid of the tied cells, unshifted.
    3. Otherwise the first step moves ``ratios[0]`` along the mean unit direction of the
       neighbours tied for the largest neighbour value; symmetric neighbourhoods cancel out and
       give no shift. A neighbour outside the heatmap reads its mirror cell, so a peak on the map
       border is not pushed into the zero padding (where the clamp would undo only part of the
       move).
    4. Each further ratio ``ratios[j]`` (multi-shift) moves the current float position by
       ``ratios[j]`` along the mean of the unit vectors from that position to the neighbours tied
       for the largest value among the neighbours not visited yet (visited: the peak and the
       cells of the earlier steps); no move when the mean vectors cancel (length <= 1e-3) or
       every neighbour was visited. Mirrored neighbours (read in 3) sit outside the map and are
       visited together with their in-map twins, so that their pulls (nearly) cancel. A
       plateau's centroid (2) is final: the 3 x 3 neighbourhood of its first cell is not
       symmetric about the centroid, so further steps would lean toward that cell's side.

    "Tied" is within ``rtol`` times the map's largest absolute value.
    """
    m, ho, wo = blurred.shape
    rows = np.arange(m)
    inner = blurred.reshape(m, -1)
    i1 = inner.argmax(axis=1)
    y0, x0 = np.divmod(i1, wo)
    v0 = inner[rows, i1]
    tol = rtol * np.maximum(np.abs(inner).max(axis=1), 1e-300)

    ny = y0[:, None] + _NB_DY  # (M, 8) neighbour cells, heatmap px
    nx = x0[:, None] + _NB_DX
    inside = (ny >= 0) & (ny < ho) & (nx >= 0) & (nx < wo)
    my = np.where((ny >= 0) & (ny < ho), ny, y0[:, None] - _NB_DY)  # mirror across the peak
    mx = np.where((nx >= 0) & (nx < wo), nx, x0[:, None] - _NB_DX)
    # Maps of height or width 1 have no mirror cell: fall back to the peak itself.
    my = np.clip(my, 0, ho - 1)
    mx = np.clip(mx, 0, wo - 1)
    nb = blurred[rows[:, None], my, mx]  # (M, 8)

    with_peak = nb >= (v0 - tol)[:, None]
    tied_peak = inside & with_peak
    n_tied = tied_peak.sum(axis=1)
    cx = x0 + (tied_peak * _NB_DX).sum(axis=1) / (1 + n_tied)
    cy = y0 + (tied_peak * _NB_DY).sum(axis=1) / (1 + n_tied)

    second = nb.max(axis=1)
    tied2 = nb >= (second - tol)[:, None]
    ux = (tied2 * (_NB_DX / _NB_LEN)).sum(axis=1)
    uy = (tied2 * (_NB_DY / _NB_LEN)).sum(axis=1)
    ln = np.hypot(ux, uy)
    move = ln > 1e-3
    safe = np.where(move, ln, 1.0)
    shift = ratios[0]
    sx = x0 + np.where(move, shift * ux / safe, 0.0)
    sy = y0 + np.where(move, shift * uy / safe, 0.0)

    plateau = n_tied > 0
    x, y = np.where(plateau, cx, sx), np.where(plateau, cy, sy)
    if len(ratios) == 1:
        return x, y
    visited = with_peak | tied2 | plateau[:, None]  # a plateau's centroid is final
    for r in ratios[1:]:
        left = ~visited
        best = np.where(left, nb, -np.inf).max(axis=1)
        tied = left & (nb >= (best - tol)[:, None])
        dx, dy = nx - x[:, None], ny - y[:, None]  # (M, 8) current position -> neighbour
        dist = np.hypot(dx, dy)
        far = dist > 1e-12
        inv = np.where(far, 1.0 / np.where(far, dist, 1.0), 0.0)
        ux = (tied * dx * inv).sum(axis=1)
        uy = (tied * dy * inv).sum(axis=1)
        ln = np.hypot(ux, uy)
        move = ln > 1e-3
        safe = np.where(move, ln, 1.0)
        x = x + np.where(move, r * ux / safe, 0.0)
        y = y + np.where(move, r * uy / safe, 0.0)
        visited |= tied
    return x, y


# ---------------------------------------------------------------------- builders
def _hw(input_hw) -> tuple[tuple[int, int], tuple[int, int]]:
    hi, wi = (int(v) for v in input_hw)
    if hi % 4 or wi % 4:
        raise InputError(f"input size must be divisible by the stride 4, got {input_hw}")
    return (hi, wi), (hi // 4, wi // 4)


_CPN_KERNELS = {(256, 192): (15, 11, 9, 7), (384, 288): (23, 17, 13, 9)}  # SPEC 4.2
# MSPN/RSN: (15, 11, 9, 7, 5) at 256x192 (SPEC 5.2). The references ship no 384x288 kernel list;
# ours extends CPN's 256 -> 384 pattern (15->23, 11->17, 9->13, 7->9) with 5->7. Design choice.
_MSPN_KERNELS = {(256, 192): (15, 11, 9, 7, 5), (384, 288): (23, 17, 13, 9, 7)}


def _scaled_kernel(ksize: int, input_h: int) -> int:
    """A 256-high kernel size scaled to another input height: the nearest odd size >= 3."""
    return max(3, 2 * round((ksize * input_h / 256.0 - 1.0) / 2.0) + 1)


def _kernels(
    table: dict, ihw: tuple[int, int], extra: tuple[int, ...] = ()
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Target kernels (and ``extra`` kernels such as the decode kernel) for an input size: the
    table's at the reference sizes, else the 256x192 ones scaled with the input height."""
    if ihw in table:  # reference sizes: SPEC's kernels, decode kernel unchanged
        return table[ihw], extra
    base = table[(256, 192)]
    return tuple(_scaled_kernel(k, ihw[0]) for k in base), tuple(
        _scaled_kernel(k, ihw[0]) for k in extra
    )


def cpn_codec(
    input_hw=(256, 192), tfcpn_kernel_order: bool = False, **options
) -> TopDownHeatmapCodec:
    """CPN codec: targets gk15/11/9/7 (23/17/13/9 at 384x288), decode = max-normalise + 21x21.

    ``level_targets`` maps GlobalNet levels P5 (coarsest) .. P2 to kernels large -> small
    (PyTorch CPN, SPEC 4.2); ``tfcpn_kernel_order=True`` gives the TF-CPN order (coarsest level
    gets the smallest kernel). The RefineNet target is the last kernel (gk7 / gk9).
    ``options`` override any other field (``reference_refine``, ``reference_border``, ...).
    """
    ihw, hhw = _hw(input_hw)
    kernels, (decode_kernel,) = _kernels(_CPN_KERNELS, ihw, (21,))
    fields = {
        "name": f"cpn_{ihw[0]}x{ihw[1]}",
        "input_hw": ihw,
        "heatmap_hw": hhw,
        "kernels": kernels,
        "level_targets": (3, 2, 1, 0) if tfcpn_kernel_order else (0, 1, 2, 3),
        "last_stage_targets": None,
        "refine_target": 3,
        "decode_kernel": decode_kernel,
        "normalize_before_blur": True,
    }
    fields.update(options)
    return TopDownHeatmapCodec(**fields)


def mspn_codec(input_hw=(256, 192), name: str = "mspn", **options) -> TopDownHeatmapCodec:
    """MSPN codec: five targets (15/11/9/7/5 at 256x192), decode = raw map + 5x5 blur.

    Units of non-last stages use kernels 0..3 (15/11/9/7), the last stage's units 1..4
    (11/9/7/5, coarse-to-fine, SPEC 5.4); the final prediction's target is kernel 4.
    """
    ihw, hhw = _hw(input_hw)
    kernels, (decode_kernel,) = _kernels(_MSPN_KERNELS, ihw, (5,))
    fields = {
        "name": f"{name}_{ihw[0]}x{ihw[1]}",
        "input_hw": ihw,
        "heatmap_hw": hhw,
        "kernels": kernels,
        "level_targets": (0, 1, 2, 3),
        "last_stage_targets": (1, 2, 3, 4),
        "refine_target": 4,
        "decode_kernel": decode_kernel,
        "normalize_before_blur": False,
    }
    fields.update(options)
    return TopDownHeatmapCodec(**fields)


def rsn_codec(input_hw=(256, 192), **options) -> TopDownHeatmapCodec:
    """RSN codec: identical to MSPN (RSN reuses MSPN's data, targets and test, SPEC 6.3)."""
    return mspn_codec(input_hw, name="rsn", **options)


CODECS = {
    "cpn_256x192": lambda **kw: cpn_codec((256, 192), **kw),
    "cpn_384x288": lambda **kw: cpn_codec((384, 288), **kw),
    "mspn_256x192": lambda **kw: mspn_codec((256, 192), **kw),
    "mspn_384x288": lambda **kw: mspn_codec((384, 288), **kw),
    "rsn_256x192": lambda **kw: rsn_codec((256, 192), **kw),
    "rsn_384x288": lambda **kw: rsn_codec((384, 288), **kw),
}


_FAMILIES = {"cpn": cpn_codec, "mspn": mspn_codec, "rsn": rsn_codec}


def build_codec(name: str, **options) -> TopDownHeatmapCodec:
    """Codec by name: a key of :data:`CODECS`, or ``<cpn|mspn|rsn>_<H>x<W>`` for any input
    size divisible by 4 (kernels scaled from the 256x192 ones), with field overrides."""
    if name in CODECS:
        return CODECS[name](**options)
    family, _, size = name.partition("_")
    try:
        hw = tuple(int(v) for v in size.split("x"))
        if family not in _FAMILIES or len(hw) != 2:
            raise ValueError
    except ValueError:
        raise InputError(
            f"unknown top-down codec {name!r}; use <cpn|mspn|rsn>_<H>x<W>, e.g. {sorted(CODECS)}"
        ) from None
    return _FAMILIES[family](hw, **options)


# Top-down settings of each layout's benchmark: the default input (COCO-style boxes 256x192,
# MPII's square 256x256 crop) and MSPN's MPII decoder blur (TEST.GAUSSIAN_KERNEL = 9, SPEC 5.6).
_LAYOUT_CODECS = {"mpii16": ("mspn_256x256", {"decode_kernel": 9})}


def layout_codec(layout, name: str | None = None, **options) -> TopDownHeatmapCodec:
    """The top-down codec ``name`` (default: the layout's benchmark input, ``mspn_256x192``, or
    ``mspn_256x256`` for MPII) with the layout's flip permutation and, for MSPN / RSN codecs,
    the layout's decoder blur (9 on MPII); ``options`` override any field.

    Args:
        layout: a :class:`~simplepose.skeleton.KeypointLayout` or its registry name.
    """
    from simplepose.skeleton import get_layout

    layout = get_layout(layout)
    name = name or _LAYOUT_CODECS.get(layout.name, ("mspn_256x192", {}))[0]
    fields = layout_codec_fields(layout, name.split("_")[0])
    fields.update(options)
    return build_codec(name, **fields)


def layout_codec_fields(layout, family: str) -> dict:
    """The codec fields a keypoint layout sets on a ``family`` (``cpn``, ``mspn``, ``rsn``)
    codec: its ``flip_index`` and, for MSPN / RSN, its benchmark's decoder blur (9 on MPII)."""
    from simplepose.skeleton import get_layout

    layout = get_layout(layout)
    fields = dict(_LAYOUT_CODECS.get(layout.name, ("", {}))[1]) if family in ("mspn", "rsn") else {}
    fields["flip_index"] = tuple(layout.flip_index)
    return fields
