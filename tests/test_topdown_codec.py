"""Top-down heatmap codec (simplepose.codecs.topdown): targets, round trips, flip test, flags."""

import math

import cv2
import numpy as np
import pytest

from simplepose.codecs.cv2_gaussian import installed_cv2_convention
from simplepose.codecs.topdown import CODECS, build_codec, cpn_codec, mspn_codec
from simplepose.errors import InputError
from simplepose.skeleton import COCO_FLIP_INDEX

K = 17


def _random_keypoints(codec, rng, n, margin_cells=0):
    """(n, 2) keypoints in input px whose floor cells are >= margin_cells from every border."""
    (hi, wi), (_ho, _wo) = codec.input_hw, codec.heatmap_hw
    sx, sy = codec.stride_xy
    x = rng.uniform(margin_cells * sx, wi - margin_cells * sx, n)
    y = rng.uniform(margin_cells * sy, hi - margin_cells * sy, n)
    return np.stack([x, y], axis=1)


def test_registry_and_spec_constants():
    sizes = ("256x192", "384x288")
    assert set(CODECS) == {f"{m}_{s}" for m in ("cpn", "mspn", "rsn") for s in sizes}
    c = build_codec("cpn_256x192")
    assert c.heatmap_hw == (64, 48) and c.kernels == (15, 11, 9, 7) and c.decode_kernel == 21
    assert c.level_targets == (0, 1, 2, 3) and c.kernels[c.refine_target] == 7
    assert cpn_codec(tfcpn_kernel_order=True).level_targets == (3, 2, 1, 0)
    assert build_codec("cpn_384x288").kernels == (23, 17, 13, 9)
    assert build_codec("cpn_384x288").heatmap_hw == (96, 72)
    m = build_codec("mspn_256x192")
    assert m.kernels == (15, 11, 9, 7, 5) and m.decode_kernel == 5 and not m.normalize_before_blur
    assert [m.kernels[i] for i in m.level_targets] == [15, 11, 9, 7]
    assert [m.kernels[i] for i in m.last_stage_targets] == [11, 9, 7, 5]
    assert build_codec("rsn_256x192").kernels == m.kernels
    small = build_codec("rsn_128x96")  # other sizes: the 256x192 kernels scaled with the height
    assert (
        small.heatmap_hw == (32, 24)
        and small.kernels == (7, 5, 5, 3, 3)
        and small.decode_kernel == 3
    )
    assert build_codec("cpn_384x288").decode_kernel == 21  # reference sizes keep SPEC's kernels
    for bad in ("cpn_130x96", "foo_256x192", "rsn_256", "mspn"):
        with pytest.raises(InputError):
            build_codec(bad)


@pytest.mark.parametrize("name", sorted(CODECS))
def test_target_peak_255_at_floor_cell(name):
    codec = build_codec(name)
    rng = np.random.default_rng(0)
    (hi, wi), (ho, wo) = codec.input_hw, codec.heatmap_hw
    kp = _random_keypoints(codec, rng, K)
    # exact cell boundaries and the last cell: floor, not round
    kp[0] = [4 * 5, 4 * 7]
    kp[1] = [4 * 5 - 1e-6, 4 * 7 + 3.999]
    kp[2] = [wi - 0.001, hi - 0.001]
    kp[3] = [0.0, 0.0]
    targets, weights = codec.encode(kp, np.full(K, 2))
    assert targets.shape == (codec.num_kernels, K, ho, wo) and targets.dtype == np.float32
    np.testing.assert_array_equal(weights, 2)
    cells = np.floor(kp / 4).astype(int)
    np.testing.assert_array_equal(cells[:4], [[5, 7], [4, 7], [wo - 1, ho - 1], [0, 0]])
    for t in range(codec.num_kernels):
        for j in range(K):
            m = targets[t, j]
            assert m[cells[j, 1], cells[j, 0]] == pytest.approx(255.0, abs=1e-3)
            assert m.max() == pytest.approx(255.0, abs=1e-3)
            assert np.unravel_index(m.argmax(), m.shape) == (cells[j, 1], cells[j, 0])


@pytest.mark.parametrize("name", ["cpn_256x192", "mspn_256x192", "cpn_384x288"])
def test_reference_border_targets_equal_cv2_blur(name):
    """reference_border=True renders exactly what the references do: cv2.GaussianBlur of an
    impulse at the floor cell, rescaled to peak 255, including reflect-101 folding at borders;
    the clean default differs only within a kernel radius of the border."""
    conv = installed_cv2_convention()
    ref_codec = build_codec(name, reference_border=True, kernel_convention=conv)
    clean = build_codec(name, kernel_convention=conv)
    ho, wo = ref_codec.heatmap_hw
    cells = np.array([[0, 0], [1, 1], [wo - 1, 2], [wo - 2, ho - 1], [20, 30], [3, ho // 2]])
    kp = cells * 4 + 1.3
    t_ref, _ = ref_codec.encode(kp, np.ones(len(kp)))
    t_clean, _ = clean.encode(kp, np.ones(len(kp)))
    for t, k in enumerate(ref_codec.kernels):
        r = k // 2
        for j, (cx, cy) in enumerate(cells):
            impulse = np.zeros((ho, wo), np.float32)
            impulse[cy, cx] = 1.0
            blur = cv2.GaussianBlur(impulse, (k, k), 0)
            np.testing.assert_allclose(t_ref[t, j], blur / blur.max() * 255, atol=2e-3)
            if r < cx < wo - 1 - r and r < cy < ho - 1 - r:  # no reflected tap reaches it
                np.testing.assert_allclose(t_clean[t, j], t_ref[t, j], atol=1e-4)


def test_unlabelled_and_off_map_keypoints_get_zero_target():
    codec = build_codec("mspn_256x192")
    kp = _random_keypoints(codec, np.random.default_rng(3), K)
    vis = np.full(K, 2.0)
    vis[0] = 0  # unlabelled
    vis[1] = 1  # occluded but labelled: has a target, weight 1
    kp[2] = [-0.5, 10]  # off the map on the left (floor cell -1)
    kp[3] = [10, 256.0]  # off the map at the bottom
    kp[4] = [np.nan, 5]
    targets, weights = codec.encode(kp, vis)
    for j in (0, 2, 3, 4):
        assert not targets[:, j].any()
        assert weights[j] == 0
    assert weights[1] == 1 and targets[:, 1].max() == pytest.approx(255, abs=1e-3)
    assert (weights[5:] == 2).all()
    b_t, b_w = codec.encode_batch(kp[None].repeat(2, 0), vis[None].repeat(2, 0))
    assert b_t.shape == (2,) + targets.shape
    np.testing.assert_array_equal(b_t[1], targets)
    np.testing.assert_array_equal(b_w[0], weights)


def test_encode_rejects_bad_shapes():
    codec = build_codec("cpn_256x192")
    with pytest.raises(InputError):
        codec.encode(np.zeros((17, 3)), np.ones(17))
    with pytest.raises(InputError):
        codec.encode(np.zeros((17, 2)), np.ones(16))


@pytest.mark.parametrize("name", sorted(CODECS))
def test_round_trip_cell_centres_exact_clean_vs_biased_reference(name):
    """Synthetic keypoints at cell centres (4c + 2): the clean decoder returns them exactly
    (< 1 input px, in fact ~0); the reference refinement always shifts 0.25 cell = 1 input px
    toward an arbitrary one of four tied neighbours (SPEC 11)."""
    clean = build_codec(name)
    ref = build_codec(name, reference_refine=True)
    rng = np.random.default_rng(1)
    r = max(clean.kernels[clean.refine_target] // 2, 1) + 1
    (ho, wo) = clean.heatmap_hw
    cells = np.stack([rng.integers(r, wo - r, (4, K)), rng.integers(r, ho - r, (4, K))], -1)
    kp = cells * 4.0 + 2.0
    tgt, _ = clean.encode_batch(kp, np.full((4, K), 2))
    final = tgt[:, clean.refine_target]
    coords, scores = clean.decode(final)
    assert coords.shape == (4, K, 2) and scores.shape == (4, K)
    err = np.linalg.norm(coords - kp, axis=-1)
    assert err.max() < 1e-6
    np.testing.assert_allclose(scores, 255 / 255 + 0.5, atol=1e-5)
    ref_err = np.linalg.norm(ref.decode(final)[0] - kp, axis=-1)
    np.testing.assert_allclose(ref_err, 1.0, atol=1e-9)


@pytest.mark.parametrize("name", sorted(CODECS))
def test_round_trip_random_keypoints(name):
    """Random keypoints: the target only knows the floor cell, so decode recovers the cell
    centre: error to the quantised keypoint < 1 input px (away from the border, where the
    targets are not truncated) and error to the true keypoint <= half a cell diagonal
    (2 sqrt 2 input px at stride 4)."""
    codec = build_codec(name)
    rng = np.random.default_rng(7)
    sx, sy = codec.stride_xy
    for t, k in enumerate(codec.kernels):
        margin = k // 2 + 1
        kp = _random_keypoints(codec, rng, 4 * K, margin).reshape(4, K, 2)
        tgt, _ = codec.encode_batch(kp, np.full((4, K), 2))
        coords, _ = codec.decode(tgt[:, t])
        quantised = codec.cells_to_input(codec.keypoint_cells(kp))
        assert np.linalg.norm(coords - quantised, axis=-1).max() < 1.0, (name, k)
        assert np.linalg.norm(coords - kp, axis=-1).max() <= math.hypot(sx, sy) / 2 + 1e-9


@pytest.mark.parametrize("name", ["cpn_256x192", "mspn_256x192"])
def test_round_trip_near_the_border_is_bounded(name):
    """Within a kernel radius of the crop border the target is truncated and the decoder's
    zero-padded blur pulls the peak inward (as in the references): bounded by ~1.25 cells."""
    codec = build_codec(name)
    rng = np.random.default_rng(11)
    (hi, wi) = codec.input_hw
    kp = np.stack([rng.uniform(0, 12, 4 * K), rng.uniform(0, hi, 4 * K)], -1).reshape(4, K, 2)
    kp[1, :, 0] = wi - 1 - kp[1, :, 0]
    tgt, _ = codec.encode_batch(kp, np.full((4, K), 2))
    coords, _ = codec.decode(tgt[:, codec.refine_target])
    quantised = codec.cells_to_input(codec.keypoint_cells(kp))
    assert np.linalg.norm(coords - quantised, axis=-1).max() <= 1.25 * 4 * math.sqrt(2) + 1e-9


@pytest.mark.parametrize("name", ["cpn_256x192", "mspn_256x192", "rsn_384x288"])
def test_flip_test_consistency(name):
    codec = build_codec(name)
    rng = np.random.default_rng(5)
    (_hi, wi) = codec.input_hw
    r = codec.kernels[codec.refine_target] // 2 + 2
    kp = _random_keypoints(codec, rng, 3 * K, r).reshape(3, K, 2)
    vis = np.full((3, K), 2)
    maps = codec.encode_batch(kp, vis)[0][:, codec.refine_target]

    # 1. flip_back is an involution, and the exact mirror changes nothing.
    np.testing.assert_array_equal(codec.flip_back(codec.flip_back(maps)), maps)
    c0, s0 = codec.decode(maps)
    c1, s1 = codec.decode(maps, flip_heatmaps=codec.flip_back(maps))
    np.testing.assert_allclose(c1, c0, atol=1e-9)
    np.testing.assert_allclose(s1, s0, atol=1e-9)

    # 2. Targets of the really mirrored crop (x' = W - 1 - x, L/R swapped): averaging them in
    #    keeps every keypoint within half a cell diagonal of the truth, without any shift.
    kp_f = kp[:, list(COCO_FLIP_INDEX)].copy()
    kp_f[..., 0] = wi - 1 - kp_f[..., 0]
    maps_f = codec.encode_batch(kp_f, vis)[0][:, codec.refine_target]
    c2, _s2 = codec.decode(maps, flip_heatmaps=maps_f)
    err_flip = np.linalg.norm(c2 - kp, axis=-1)
    assert err_flip.max() <= 2 * math.sqrt(2) + 1e-9
    # where the mirrored keypoint falls into the mirrored cell, flip test changes nothing
    same = np.floor((wi - 1 - kp[..., 0]) / 4) == (wi // 4 - 1 - np.floor(kp[..., 0] / 4))
    assert same.any() and (~same).any()
    np.testing.assert_allclose(c2[same], c0[same], atol=1e-9)
    # elsewhere the peak is split evenly over two cells: the clean decoder takes their middle
    np.testing.assert_allclose(c2[~same][:, 0], np.floor(kp[~same][:, 0] / 4) * 4 + 4, atol=1e-9)
    assert np.abs(c2[~same][:, 0] - kp[~same][:, 0]).max() < 1.0


def test_decode_frames_inputs_and_degenerate_maps():
    torch = pytest.importorskip("torch")
    codec = build_codec("cpn_256x192")
    kp = _random_keypoints(codec, np.random.default_rng(2), 2 * K, 5).reshape(2, K, 2)
    maps = codec.encode_batch(kp, np.full((2, K), 2))[0][:, codec.refine_target]
    coords, _scores = codec.decode(maps)
    # torch input, (K, H, W) input
    c_t, _ = codec.decode(torch.from_numpy(maps))
    np.testing.assert_array_equal(c_t, coords)
    np.testing.assert_array_equal(codec.decode(maps[0])[0][0], coords[0])
    # inverse affine to original px: a scale-2 shift
    inv = np.array([[2.0, 0, 100], [0, 2.0, 50]])
    c_o, _ = codec.decode(maps, inverse_affine=inv)
    np.testing.assert_allclose(c_o, coords * 2 + [100, 50])
    # all-zero / all-negative maps: finite coordinates inside the crop
    for fill in (0.0, -3.0):
        c, s = codec.decode(np.full((1, K, 64, 48), fill))
        assert np.isfinite(c).all() and (c >= 0).all() and (c[..., 0] <= 192).all()
        np.testing.assert_allclose(s, fill / 255 + 0.5)
    with pytest.raises(InputError):
        codec.decode(np.zeros((1, K, 32, 24)))
    with pytest.raises(InputError):
        codec.decode(maps, flip_heatmaps=maps[:1])


def test_reference_flags_reproduce_reference_decoder():
    """reference_refine=True follows the reference loop exactly (raster argmax, zero it, second
    argmax, 0.25 toward it) -- checked against a per-keypoint transcription with cv2."""
    codec = mspn_codec(reference_refine=True, kernel_convention=installed_cv2_convention())
    rng = np.random.default_rng(9)
    maps = rng.random((2, K, 64, 48)) * 50
    maps[:, :, 20:23, 10:13] += 200 * rng.random((2, K, 3, 3))
    coords, scores = codec.decode(maps)
    for n in range(2):
        for j in range(K):
            dr = np.zeros((84, 68))
            dr[10:-10, 10:-10] = maps[n, j]
            dr = cv2.GaussianBlur(dr, (5, 5), 0)
            y, x = np.unravel_index(dr.argmax(), dr.shape)
            dr[y, x] = 0
            py, px = np.unravel_index(dr.argmax(), dr.shape)
            x, y, px, py = x - 10, y - 10, px - 10 - (x - 10), py - 10 - (y - 10)
            ln = math.hypot(px, py)
            fx, fy = (x + 0.25 * px / ln, y + 0.25 * py / ln) if ln > 1e-3 else (x, y)
            fx, fy = min(max(fx, 0), 47), min(max(fy, 0), 63)
            assert coords[n, j] == pytest.approx([fx * 4 + 2, fy * 4 + 2])
            sc = maps[n, j, int(round(fy) + 1e-9), int(round(fx) + 1e-9)] / 255 + 0.5
            assert scores[n, j] == pytest.approx(sc)
