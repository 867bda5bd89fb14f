"""Multi-shift top-down decoding (MSPN's TEST.SHIFT_RATIOS): ``TopDownHeatmapCodec.shift_ratios``.

(a) the default ``(0.25,)`` is bit-identical to the single-shift decoder it replaced, for both
refinements; (b) ``reference_refine=True`` follows the reference loop, checked against a plain
Python transcription of it; (c) a hand-computed map; (d) bad ratios; (e) specs and checkpoints,
old (one float ``shift``) and new; and the option where users decode (pipeline, predictor, CLI).
"""

import importlib.util
import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import simplepose.codecs.topdown as td
from simplepose.checkpoint import load_model, read_metadata, save_model
from simplepose.codecs.cv2_gaussian import installed_cv2_convention
from simplepose.codecs.topdown import check_shift_ratios, mspn_codec
from simplepose.errors import InputError
from simplepose.spec import PoseModelSpec, codec_from_dict, codec_to_dict, get_spec

K = 17
REPO = Path(__file__).resolve().parents[1]
MPII = REPO / "tests" / "data" / "mpii" / "test_mpii.json"
MPII_GT = REPO / "tests" / "data" / "mpii" / "gt_sample.mat"


# ------------------------------------------------------------------ (a) default == old decoder
# The single-shift refinements as they were before ``shift_ratios`` (frozen copies, so that the
# default can be compared with them bit for bit).
def _old_reference(blurred, shift):
    m, _hp, wp = blurred.shape
    flat = blurred.reshape(m, -1).copy()
    rows = np.arange(m)
    i1 = flat.argmax(axis=1)
    flat[rows, i1] = 0.0
    i2 = flat.argmax(axis=1)
    y1, x1 = np.divmod(i1, wp)
    y2, x2 = np.divmod(i2, wp)
    dx, dy = (x2 - x1).astype(np.float64), (y2 - y1).astype(np.float64)
    ln = np.hypot(dx, dy)
    move = ln > 1e-3
    safe = np.where(move, ln, 1.0)
    return x1 + np.where(move, shift * dx / safe, 0.0), y1 + np.where(move, shift * dy / safe, 0.0)


def _old_clean(blurred, shift, rtol):
    nb_dy, nb_dx, nb_len = td._NB_DY, td._NB_DX, td._NB_LEN
    m, ho, wo = blurred.shape
    rows = np.arange(m)
    inner = blurred.reshape(m, -1)
    i1 = inner.argmax(axis=1)
    y0, x0 = np.divmod(i1, wo)
    v0 = inner[rows, i1]
    tol = rtol * np.maximum(np.abs(inner).max(axis=1), 1e-300)
    ny, nx = y0[:, None] + nb_dy, x0[:, None] + nb_dx
    inside = (ny >= 0) & (ny < ho) & (nx >= 0) & (nx < wo)
    my = np.clip(np.where((ny >= 0) & (ny < ho), ny, y0[:, None] - nb_dy), 0, ho - 1)
    mx = np.clip(np.where((nx >= 0) & (nx < wo), nx, x0[:, None] - nb_dx), 0, wo - 1)
    nb = blurred[rows[:, None], my, mx]
    tied_peak = inside & (nb >= (v0 - tol)[:, None])
    n_tied = tied_peak.sum(axis=1)
    cx = x0 + (tied_peak * nb_dx).sum(axis=1) / (1 + n_tied)
    cy = y0 + (tied_peak * nb_dy).sum(axis=1) / (1 + n_tied)
    second = nb.max(axis=1)
    tied2 = nb >= (second - tol)[:, None]
    ux = (tied2 * (nb_dx / nb_len)).sum(axis=1)
    uy = (tied2 * (nb_dy / nb_len)).sum(axis=1)
    ln = np.hypot(ux, uy)
    move = ln > 1e-3
    safe = np.where(move, ln, 1.0)
    sx = x0 + np.where(move, shift * ux / safe, 0.0)
    sy = y0 + np.where(move, shift * uy / safe, 0.0)
    plateau = n_tied > 0
    return np.where(plateau, cx, sx), np.where(plateau, cy, sy)


def _test_maps(rng, n=3, hw=(64, 48)):
    """Random maps with the cases the refinements treat specially: blurred single-cell peaks
    (4 tied neighbours), peaks split over 2 and 4 cells, peaks on the border and in a corner,
    all-zero and all-negative maps."""
    maps = rng.random((n, K) + hw) * 50
    maps[:, :, 20:23, 10:13] += 200 * rng.random((n, 1, 3, 3))
    maps[:, 0] = 0.0
    maps[:, 0, 30, 20] = 255.0  # single cell: the blur makes its 4 neighbours tie
    maps[:, 1] = 0.0
    maps[:, 1, 10, 5:7] = 255.0  # split over 2 cells
    maps[:, 2] = 0.0
    maps[:, 2, 40:42, 30:32] = 255.0  # split over 4 cells
    maps[:, 3] = 0.0
    maps[:, 3, 0, 0] = 255.0  # corner
    maps[:, 4] = 0.0
    maps[:, 4, 63, 17] = 255.0  # border
    maps[:, 5] = 0.0  # all zero
    maps[:, 6] = -rng.random(hw)  # all negative
    return maps


@pytest.mark.parametrize("family", ["mspn", "cpn"])
@pytest.mark.parametrize("reference", [False, True])
def test_default_is_the_old_single_shift_decoder_bit_for_bit(monkeypatch, family, reference):
    codec = td.build_codec(f"{family}_256x192", reference_refine=reference)
    assert codec.shift_ratios == (0.25,)
    rng = np.random.default_rng(3)
    maps, flips = _test_maps(rng), _test_maps(rng)
    new = codec.decode(maps), codec.decode(maps, flip_heatmaps=flips)
    # the refinements themselves, on the blurred maps
    blurred = rng.random((40, 30, 20)) * 10
    blurred[::2, 7, 5] = 20.0
    blurred[1::4, 7:9, 5] = 20.0
    x, y = td._refine_reference(blurred, (0.25,))
    xo, yo = _old_reference(blurred, 0.25)
    assert np.array_equal(x, xo) and np.array_equal(y, yo)
    x, y = td._refine_clean(blurred, (0.25,), 1e-9)
    xo, yo = _old_clean(blurred, 0.25, 1e-9)
    assert np.array_equal(x, xo) and np.array_equal(y, yo)
    # the whole decoder with the old refinements swapped in
    monkeypatch.setattr(td, "_refine_reference", lambda b, r: _old_reference(b, r[0]))
    monkeypatch.setattr(td, "_refine_clean", lambda b, r, t: _old_clean(b, r[0], t))
    old = codec.decode(maps), codec.decode(maps, flip_heatmaps=flips)
    for (c_new, s_new), (c_old, s_old) in zip(new, old):
        assert np.array_equal(c_new, c_old) and np.array_equal(s_new, s_old, equal_nan=True)


# ------------------------------------------------------------------ (b) reference loop
def _python_reference(hmap, kernel, ratios, pad=10):
    """The reference loop, from its description: blur the zero-padded map; x, y = first argmax,
    zero it; for each ratio: the next argmax (maxima visited so far zeroed), zero it, move the
    current float x, y by the ratio along the unit vector toward it; clamp; 4x + 2."""
    h, w = hmap.shape
    dr = np.zeros((h + 2 * pad, w + 2 * pad))
    dr[pad:-pad, pad:-pad] = hmap
    dr = cv2.GaussianBlur(dr, (kernel, kernel), 0)
    cells = [(float(dr[r, c]), r * dr.shape[1] + c, r, c)
             for r in range(dr.shape[0]) for c in range(dr.shape[1])]  # fmt: skip
    visited = set()

    def next_max():
        best = None
        for value, order, r, c in cells:  # first maximum in raster order
            if (r, c) in visited:
                value = 0.0
            if best is None or value > best[0]:
                best = (value, order, r, c)
        visited.add((best[2], best[3]))
        return best[2] - pad, best[3] - pad

    y, x = next_max()
    x, y = float(x), float(y)
    for ratio in ratios:
        py, px = next_max()
        dx, dy = px - x, py - y
        length = math.sqrt(dx * dx + dy * dy)
        if length > 1e-3:
            x += ratio * dx / length
            y += ratio * dy / length
    x, y = min(max(x, 0.0), w - 1.0), min(max(y, 0.0), h - 1.0)
    return x * 4 + 2, y * 4 + 2


@pytest.mark.parametrize("ratios", [(0.25,), (0.25, 0.1), (0.5, 0.3, 0.2, 0.1), (0.0, 0.9)])
def test_reference_multi_shift_follows_the_reference_loop(ratios):
    codec = mspn_codec((32, 24), reference_refine=True, shift_ratios=ratios,
                       kernel_convention=installed_cv2_convention())  # fmt: skip
    assert codec.heatmap_hw == (8, 6) and codec.decode_kernel == 3
    rng = np.random.default_rng(5)
    maps = rng.random((2, K, 8, 6)) * 50
    maps[:, :, 3:6, 2:5] += 200 * rng.random((2, K, 3, 3))
    maps[:, 0] = 0.0
    maps[:, 0, 4, 3] = 255.0  # tied neighbours: raster order decides, as in the reference
    maps[:, 1] = 0.0
    maps[:, 1, 0, 5] = 255.0  # a corner: the next maxima include cells of the padding
    coords, _ = codec.decode(maps)
    for n in range(2):
        for j in range(K):
            expected = _python_reference(maps[n, j], codec.decode_kernel, ratios)
            assert coords[n, j] == pytest.approx(expected, abs=1e-9), (n, j)


# ------------------------------------------------------------------ (c) hand-computed
def test_hand_computed_multi_shift():
    """A map (no blur: decode kernel 1) with 1st maximum at cell (x, y) = (3, 3), 2nd at (4, 3),
    3rd at (3, 4): 0.25 toward the 2nd gives (3.25, 3); 0.1 from there toward (3, 4), along
    (-0.25, 1) / (sqrt(17) / 4), gives (3.25 - 0.1 / sqrt(17), 3 + 0.4 / sqrt(17))."""
    maps = np.zeros((1, K, 8, 6))
    maps[0, :, 3, 3], maps[0, :, 3, 4], maps[0, :, 4, 3] = 10.0, 8.0, 6.0
    x = 3.25 - 0.1 / math.sqrt(17)
    y = 3.0 + 0.4 / math.sqrt(17)
    for reference in (False, True):
        codec = mspn_codec((32, 24), decode_kernel=1, reference_refine=reference)
        coords, scores = codec.with_options(shift_ratios=(0.25, 0.1)).decode(maps)
        assert coords[0, 0] == pytest.approx([4 * x + 2, 4 * y + 2], abs=1e-12)
        assert scores[0, 0] == pytest.approx(10 / 255 + 0.5)  # read at the rounded cell (3, 3)
        single, _ = codec.decode(maps)
        assert single[0, 0] == pytest.approx([4 * 3.25 + 2, 4 * 3 + 2], abs=1e-12)
    # the 3rd global maximum far from the peak: the reference moves toward it, the clean
    # refinement toward the next-largest neighbour (cell (2, 2), value 2, direction (-1.25, -1))
    maps[0, :, 4, 3] = 0.0
    maps[0, :, 7, 0] = 6.0
    maps[0, :, 2, 2] = 2.0
    ref = mspn_codec((32, 24), decode_kernel=1, reference_refine=True, shift_ratios=(0.25, 0.1))
    clean = ref.with_options(reference_refine=False)
    d = math.hypot(-3.25, 4.0)  # (3.25, 3) -> (0, 7)
    assert ref.decode(maps)[0][0, 0] == pytest.approx(
        [4 * (3.25 - 0.1 * 3.25 / d) + 2, 4 * (3 + 0.1 * 4 / d) + 2], abs=1e-12)
    d = math.hypot(-1.25, -1.0)  # (3.25, 3) -> (2, 2)
    assert clean.decode(maps)[0][0, 0] == pytest.approx(
        [4 * (3.25 - 0.1 * 1.25 / d) + 2, 4 * (3 - 0.1 / d) + 2], abs=1e-12)


def test_clean_multi_shift_keeps_symmetric_peaks_and_plateaus_centred():
    """A blurred single-cell peak has symmetric rings: every step cancels out. A peak split over
    two cells stays at their midpoint (a plateau's centroid is final)."""
    codec = mspn_codec(shift_ratios=(0.25, 0.1, 0.05))
    maps = np.zeros((1, K, 64, 48))
    maps[0, 0, 30, 20] = 255.0
    maps[0, 1, 10, 20:22] = 255.0
    coords, _ = codec.decode(maps)
    assert coords[0, 0] == pytest.approx([4 * 20 + 2, 4 * 30 + 2], abs=1e-9)
    assert coords[0, 1] == pytest.approx([4 * 20.5 + 2, 4 * 10 + 2], abs=1e-9)


# ------------------------------------------------------------------ (d) bad ratios
@pytest.mark.parametrize(
    "ratios, needle",
    [
        ((), "1 to 8 ratios"),
        ((0.1,) * 9, "1 to 8 ratios"),
        ((0.25, 1.0), "in [0, 1)"),
        ((-0.1,), "in [0, 1)"),
        ((float("nan"),), "in [0, 1)"),
        ((float("inf"),), "in [0, 1)"),
        (("a",), "list of numbers"),
        ("0.25", "list of numbers"),
        ((True,), "list of numbers"),
        (None, "list of numbers"),
    ],
)
def test_bad_ratios_are_refused_naming_the_field(ratios, needle):
    with pytest.raises(InputError, match="shift_ratios") as info:
        mspn_codec(shift_ratios=ratios)
    assert needle in str(info.value)
    with pytest.raises(InputError, match="--shift-ratios"):
        check_shift_ratios(ratios, "--shift-ratios")


def test_good_ratios_are_normalised():
    assert mspn_codec(shift_ratios=0.3).shift_ratios == (0.3,)
    assert mspn_codec(shift_ratios=[0, np.float32(0.5)]).shift_ratios == (0.0, 0.5)
    assert mspn_codec(shift_ratios=np.array([0.25, 0.1])).shift_ratios == (0.25, 0.1)
    assert len(check_shift_ratios((0.1,) * 8)) == 8


# ------------------------------------------------------------------ (e) specs and checkpoints
def test_codec_dict_round_trip_and_old_single_shift():
    codec = mspn_codec(shift_ratios=(0.25, 0.1))
    data = codec_to_dict(codec)
    assert data["shift_ratios"] == [0.25, 0.1] and "shift" not in data
    assert codec_from_dict(json.loads(json.dumps(data))) == codec
    old = {k: v for k, v in codec_to_dict(mspn_codec()).items() if k != "shift_ratios"}
    assert codec_from_dict({**old, "shift": 0.25}) == mspn_codec()
    assert codec_from_dict({**old, "shift": 0.3}).shift_ratios == (0.3,)
    with pytest.raises(InputError, match="not both"):
        codec_from_dict({**old, "shift": 0.25, "shift_ratios": [0.25]})
    with pytest.raises(InputError, match="shift_ratios"):
        codec_from_dict({**old, "shift": 1.5})


def _small_rsn():
    spec = get_spec("rsn18").with_kwargs(num_stages=1, input_size=[64, 48])
    torch.manual_seed(0)
    return spec, spec.build_model().eval()


def _old_spec_dict(spec):
    """The spec as an older simplepose stored it: the codec's one float ``shift``."""
    data = spec.to_dict()
    ratios = data["codec"].pop("shift_ratios")
    data["codec"]["shift"] = ratios[0]
    return data


def test_specs_and_checkpoints_old_and_new(tmp_path):
    spec, model = _small_rsn()
    # an old spec (JSON) still loads and holds today's field
    old = PoseModelSpec.from_dict(_old_spec_dict(spec))
    assert old == spec and "shift" not in old.codec and old.build_codec().shift_ratios == (0.25,)
    # a new multi-shift spec round-trips
    multi = spec.with_codec(spec.build_codec().with_options(shift_ratios=(0.25, 0.1)))
    again = PoseModelSpec.from_json(multi.to_json())
    assert again == multi and again.build_codec().shift_ratios == (0.25, 0.1)
    # checkpoints: new (multi-shift) and old (a float shift in the stored spec)
    path = save_model(tmp_path / "multi.safetensors", multi, model.state_dict())
    _model, meta = load_model(path)
    assert meta["spec"] == multi and meta["spec"].build_codec().shift_ratios == (0.25, 0.1)
    old_path = tmp_path / "old.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(old_path), metadata={
        "simplepose_spec": json.dumps(_old_spec_dict(spec)), "simplepose_model": spec.name,
        "model_kwargs": json.dumps(spec.kwargs), "format_version": "1"})  # fmt: skip
    assert read_metadata(old_path)["spec"].build_codec() == spec.build_codec()
    load_model(old_path)


# ------------------------------------------------------------------ where users decode
def test_pipeline_and_predictor_option(tmp_path):
    from simplepose import Predictor
    from simplepose.inference.topdown import TopDownPipeline

    spec, model = _small_rsn()
    pipe = TopDownPipeline.from_spec(model, spec, shift_ratios=[0.25, 0.1])
    assert pipe.codec.shift_ratios == (0.25, 0.1)
    assert TopDownPipeline.from_spec(model, spec).codec.shift_ratios == (0.25,)
    with pytest.raises(InputError, match="shift_ratios"):
        TopDownPipeline.from_spec(model, spec, shift_ratios=[2.0])
    path = save_model(tmp_path / "rsn.safetensors", spec, model.state_dict())
    predictor = Predictor.from_checkpoint(path, device="cpu", detector=None, flip=False,
                                          shift_ratios=(0.25, 0.1))  # fmt: skip
    assert predictor.pipeline.codec.shift_ratios == (0.25, 0.1)
    image = np.full((80, 60, 3), 127, np.uint8)
    people = predictor.predict(image, boxes_xyxy=np.array([[5.0, 5.0, 50.0, 70.0]]))
    assert len(people) == 1
    # a bottom-up model has no such option: one clear line, not a TypeError
    with pytest.raises(InputError, match="bottomup model: option.*shift_ratios"):
        Predictor.from_pretrained("openpose_mobilenet_thin", device="cpu", shift_ratios=(0.25,))


def _evaluate_script():
    spec = importlib.util.spec_from_file_location("evaluate_script", REPO / "evaluate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_evaluate_cli_flag(tmp_path, capsys):
    evaluate = _evaluate_script()
    base = ["--oracle", "topdown", "--gt-boxes", "--ann", str(MPII), "--head-boxes", str(MPII_GT),
            "--quiet"]  # fmt: skip
    m = tmp_path / "m.json"
    code = evaluate.main([*base, "--metrics", str(m), "--shift-ratios", "0.25", "0.1"])
    _, err = capsys.readouterr()
    assert code == 0, err
    rec = json.loads(m.read_text())
    assert rec["shift_ratios"] == [0.25, 0.1] and rec["PCKh@0.5"] == 100.0
    for bad, needle in (
        (["--shift-ratios", "1"], "in [0, 1)"),
        (["--shift-ratios", *["0.1"] * 9], "1 to 8 ratios"),
        (["--shift-ratios", "x"], "invalid float value"),
    ):
        with pytest.raises(SystemExit) as info:
            evaluate.main([*base, "--metrics", str(tmp_path / "bad.json"), *bad])
        assert info.value.code == 2
        assert needle in capsys.readouterr().err
    with pytest.raises(SystemExit):
        evaluate.main(["--oracle", "bottomup", "--ann", str(MPII), "--metrics", str(m),
                       "--shift-ratios", "0.25"])  # fmt: skip
    assert "top-down decoding option" in capsys.readouterr().err


def test_demo_cli_flag_refuses_bottom_up_models(tmp_path, capsys):
    from simplepose.cli import demo

    image = tmp_path / "in.jpg"
    cv2.imwrite(str(image), np.zeros((32, 32, 3), np.uint8))
    code = demo.main(["--input", str(image), "--json", str(tmp_path / "p.json"),
                      "--shift-ratios", "0.25", "0.1"])  # fmt: skip
    assert code == 2 and "--shift-ratios is a top-down decoding option" in capsys.readouterr().err
    code = demo.main(["--input", str(image), "--json", str(tmp_path / "p.json"),
                      "--shift-ratios", "1.5"])  # fmt: skip
    assert code == 2 and "--shift-ratios: every ratio" in capsys.readouterr().err
