"""The extension validates in the binding: bad input raises a clear error, never crashes."""

import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simplepose.decode.grouping import group, load_extension
from simplepose.decode.params import GroupingParams
from simplepose.errors import InputError
from simplepose.skeleton import SIMPLEPOSE18

LIMBS = SIMPLEPOSE18.limbs_array
SCALES = {"scale_x": 1.0, "scale_y": 1.0, "image_height": 100.0}


def maps(h=16, w=16):
    return np.zeros((18, h, w), np.float32), np.zeros((30, h, w), np.float32)


def call(heat, limb_maps, limbs=LIMBS, **overrides):
    """The binding itself (no Python-side validation): overrides go into the params dict
    or, for the scales, into the call."""
    scales = {k: overrides.pop(k, v) for k, v in SCALES.items()}
    params = {**GroupingParams().to_dict(), **overrides}
    return load_extension().group(heat, limb_maps, limbs, params, **scales)


@pytest.mark.parametrize(
    "mutate, error, message",
    [
        (lambda h, l: (h.astype(np.float64), l, LIMBS), TypeError, "heatmaps must be float32"),
        (lambda h, l: (h, l.astype(np.float16), LIMBS), TypeError, "limb_maps must be float32"),
        (
            lambda h, l: (np.asfortranarray(h[:, :, :15].transpose(0, 2, 1)), l, LIMBS),
            ValueError,
            "C-contiguous",
        ),
        (lambda h, l: (h[:, ::2], l, LIMBS), ValueError, "C-contiguous"),
        (lambda h, l: (h[0], l, LIMBS), ValueError, "heatmaps must have shape"),
        (lambda h, l: (h[:, :0], l[:, :0], LIMBS), ValueError, "non-empty"),
        (
            lambda h, l: (h, np.ascontiguousarray(l[:, :8]), LIMBS),
            ValueError,
            "does not match heatmaps",
        ),
        (lambda h, l: (h, l[:29], LIMBS), ValueError, "30 rows"),
        (lambda h, l: (h, l[None], LIMBS), ValueError, "PAF limb_maps"),
        (lambda h, l: (h, l[..., None, None], LIMBS), ValueError, "limb_maps must have shape"),
        (lambda h, l: (h, l, LIMBS.astype(np.float32)), TypeError, "limbs must be int32 or int64"),
        (lambda h, l: (h, l, LIMBS[:, :1]), ValueError, "limbs must have shape"),
        (lambda h, l: (h, l, np.where(LIMBS == 17, 18, LIMBS)), ValueError, "outside [0, 18)"),
        (lambda h, l: (h, l, np.where(LIMBS == 0, -1, LIMBS)), ValueError, "refers to part -1"),
    ],
)
def test_bad_arrays_raise_named_errors(mutate, error, message):
    heat, limb_maps = maps()
    with pytest.raises(error, match=re.escape(message)):
        call(*mutate(heat, limb_maps))


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("which", ["heatmaps", "limb_maps"])
def test_non_finite_maps_raise(value, which):
    heat, limb_maps = maps()
    (heat if which == "heatmaps" else limb_maps)[3, 5, 7] = value
    with pytest.raises(ValueError, match=f"{which} contains NaN or inf"):
        call(heat, limb_maps)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"scale_x": 0.0}, "scale_x must be a finite number in"),
        ({"scale_y": float("nan")}, "scale_y must be a finite number in"),
        ({"image_height": -1.0}, "image_height must be a finite number in"),
        ({"max_peaks_per_part": 0}, "params['max_peaks_per_part'] must be a finite number in [1, "),
        ({"max_peaks_per_part": 10**9}, "params['max_peaks_per_part'] must be a finite number in"),
        ({"max_peaks_per_part": 10**30}, "params['max_peaks_per_part'] must be a finite number in"),
        ({"limb_max_samples": 1}, "params['limb_max_samples']"),
        ({"min_parts": 0}, "params['min_parts']"),
        ({"max_candidate_pairs": 10**12}, "params['max_candidate_pairs']"),
        (
            {"priority_weights": (1.0, 2.0)},
            "params['priority_weights'] must be a tuple of 3 numbers",
        ),
        ({"priority_weights": "abc"}, "params['priority_weights'] must be a tuple of 3 numbers"),
        (
            {"priority_weights": (1.0, float("nan"), 0.0)},
            "params['priority_weights'][1] must be a finite",
        ),
        ({"person_score": "max"}, "params['person_score']"),
        ({"peak_threshold": float("inf")}, "params['peak_threshold'] must be a finite number"),
        ({"limb_pass_ratio": 1.5}, "params['limb_pass_ratio'] must be a finite number in [0, 1]"),
    ],
)
def test_bad_parameters_raise(overrides, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        call(*maps(), **overrides)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            {"priority_weights": (1.0, "a", 0.0)},
            "params['priority_weights'][1] must be a number, got str",
        ),
        ({"max_peaks_per_part": 64.0}, "params['max_peaks_per_part'] must be an int, got float"),
        ({"min_parts": True}, "params['min_parts'] must be an int, got bool"),
        ({"length_prior": 1}, "params['length_prior'] must be a bool, got int"),
        ({"peak_threshold": "0.1"}, "params['peak_threshold'] must be a number, got str"),
    ],
)
def test_wrong_parameter_types_raise_type_errors(overrides, message):
    with pytest.raises(TypeError, match=re.escape(message)):
        call(*maps(), **overrides)


def test_params_dict_must_have_exactly_the_dataclass_fields():
    """The binding has no defaults of its own: a missing key or an unknown one is refused."""
    heat, limb_maps = maps()
    params = GroupingParams().to_dict()
    ext = load_extension()
    for key in params:
        partial = {k: v for k, v in params.items() if k != key}
        with pytest.raises(ValueError, match=re.escape(f"params is missing '{key}'")):
            ext.group(heat, limb_maps, LIMBS, partial, **SCALES)
    with pytest.raises(ValueError, match="params has an unknown key 'peak_thresh'"):
        ext.group(heat, limb_maps, LIMBS, {**params, "peak_thresh": 0.2}, **SCALES)


def test_grouping_params_validate_in_python():
    with pytest.raises(InputError, match="person_score"):
        GroupingParams(person_score="max")
    with pytest.raises(InputError, match="unknown GroupingParams field"):
        GroupingParams().replace(peak_thresh=0.2)


@pytest.mark.parametrize(
    "weights, message",
    [
        ((1.0, 2.0), "GroupingParams.priority_weights must be 3 numbers"),
        (None, "GroupingParams.priority_weights must be 3 numbers"),
        ("abc", "GroupingParams.priority_weights must be 3 numbers"),
        ((1.0, "a", 0.0), "GroupingParams.priority_weights[1] must be a number, got 'a'"),
        ((1.0, float("nan"), 0.0), "GroupingParams.priority_weights[1] must be a finite number"),
        ((1.0, 0.0, float("inf")), "GroupingParams.priority_weights[2] must be a finite number"),
        ((1.0, 0.0, 1e300), "GroupingParams.priority_weights[2] must be a finite number"),
    ],
)
def test_bad_priority_weights_are_one_clear_error(weights, message):
    with pytest.raises(InputError, match=re.escape(message)):
        GroupingParams(priority_weights=weights)


def test_grouping_params_coerce_numpy_scalars_and_lists():
    p = GroupingParams(
        priority_weights=[np.float32(1), 0, np.int64(2)],
        max_peaks_per_part=np.int64(8),
        length_prior=np.bool_(False),
        peak_threshold=np.float32(0.25),
    )
    assert p.priority_weights == (1.0, 0.0, 2.0) and type(p.max_peaks_per_part) is int
    assert p.length_prior is False and type(p.peak_threshold) is float
    res = group(*maps(), LIMBS, p)  # the dict the binding receives has plain types
    assert len(res) == 0
    with pytest.raises(
        InputError, match=re.escape("GroupingParams.max_peaks_per_part must be an integer")
    ):
        GroupingParams(max_peaks_per_part=64.5)
    with pytest.raises(
        InputError, match=re.escape("GroupingParams.max_peaks_per_part must be a finite number in")
    ):
        GroupingParams(max_peaks_per_part=10**9)


def test_python_wrapper_rejects_unknown_backend():
    with pytest.raises(InputError, match="backend"):
        group(*maps(), LIMBS, backend="cuda")


def test_unpickled_arrays_are_accepted_and_byte_swapped_ones_refused():
    """An unpickled float32 array has an equal but distinct dtype object: still float32."""
    import pickle

    heat, limb_maps = (pickle.loads(pickle.dumps(a)) for a in maps())
    assert heat.dtype is not np.dtype(np.float32)  # the case the check must not trip on
    assert len(call(heat, limb_maps, pickle.loads(pickle.dumps(LIMBS)))["scores"]) == 0
    with pytest.raises(TypeError, match="heatmaps must be float32, got dtype >f4"):
        call(heat.astype(">f4"), limb_maps)


def test_zero_peaks_and_empty_limbs_are_fine():
    res = call(*maps())
    assert res["people"].shape == (0, 18, 3) and res["peaks"].shape == (0, 4)
    heat = np.zeros((2, 4, 4), np.float32)
    heat[0, 1, 1] = 1
    res = call(heat, np.zeros((0, 4, 4), np.float32), np.zeros((0, 2), np.int64))
    assert len(res["peaks"]) == 1 and len(res["scores"]) == 0


def test_thousands_of_peaks_are_capped_and_fast():
    rng = np.random.default_rng(0)
    heat = rng.random((18, 200, 200), dtype=np.float32)  # ~4,000 local maxima per part
    limb_maps = rng.random((30, 200, 200), dtype=np.float32)
    res = call(heat, limb_maps, max_peaks_per_part=64)
    assert len(res["peaks"]) == 18 * 64


# ----------------------------------------------------------------------------- fuzz
DTYPES = [np.float32, np.float64, np.float16, np.int32, np.int64, np.uint8, np.bool_]
SPECIAL = [np.nan, np.inf, -np.inf, 0.0, 1.0, -1.0, 1e38, -1e38, 1e-40]


@st.composite
def malformed_inputs(draw):
    parts = draw(st.integers(0, 20))
    h, w = draw(st.integers(0, 40)), draw(st.integers(0, 40))
    num_limbs = draw(st.integers(0, 32))
    paf = draw(st.booleans())
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind = draw(st.sampled_from(["zeros", "noise", "peaks", "special"]))

    def fill(shape):
        if kind == "zeros":
            return np.zeros(shape, np.float32)
        if kind == "noise":
            return rng.random(shape, dtype=np.float32) * draw(st.sampled_from([1.0, 100.0, 1e30]))
        if kind == "peaks":
            return (rng.random(shape) > 0.9).astype(np.float32)
        a = rng.random(shape).astype(np.float32)
        if a.size:
            a.flat[rng.integers(0, a.size, 3)] = draw(st.sampled_from(SPECIAL))
        return a

    heat = fill((parts, h, w))
    limb_shape = (num_limbs, 2, h, w) if paf else (num_limbs, h, w)
    if draw(st.booleans()):  # sometimes break a shape
        limb_shape = tuple(max(d + draw(st.integers(-1, 1)), 0) for d in limb_shape)
    limb_maps = fill(limb_shape)
    if draw(st.integers(0, 5)) == 0:
        with np.errstate(all="ignore"):  # NaN/inf -> int casts are part of the fuzz
            heat = heat.astype(draw(st.sampled_from(DTYPES)))
    if draw(st.integers(0, 5)) == 0 and limb_maps.ndim >= 2 and limb_maps.shape[-1] > 1:
        limb_maps = limb_maps[..., ::2]  # non-contiguous
    limbs = rng.integers(-2, max(parts, 1) + 2, (num_limbs, 2))
    if draw(st.integers(0, 3)) > 0:
        limbs = np.clip(limbs, 0, max(parts - 1, 0))
    limbs = limbs.astype(draw(st.sampled_from([np.int64, np.int32, np.int16, np.float64])))
    overrides = {
        "max_peaks_per_part": draw(st.sampled_from([1, 8, 64, 100_000, 0, -5, 10**9])),
        "limb_max_samples": draw(st.sampled_from([2, 20, 10_000, 1, 0])),
        "peak_threshold": draw(st.sampled_from([0.1, 0.0, -1.0, 1e30, np.nan])),
        "scale_x": draw(st.sampled_from([1.0, 1e-9, 0.0, -1.0, 1e9, 1e6, 1e300, np.inf])),
        "image_height": draw(st.sampled_from([100.0, 1e-9, 0.0, np.inf])),
        "min_parts": draw(st.sampled_from([1, 2, 0])),
    }
    return heat, limb_maps, limbs, overrides


@settings(
    max_examples=1200, deadline=2000, suppress_health_check=list(HealthCheck), derandomize=True
)
@given(malformed_inputs())
def test_fuzz_binding_never_crashes(case):
    heat, limb_maps, limbs, overrides = case
    try:
        out = call(heat, limb_maps, limbs, **overrides)
    except (TypeError, ValueError):
        return  # a clear rejection is the expected outcome for malformed input
    # accepted input: the output is well-formed
    assert out["people"].shape[1:] == (heat.shape[0], 3)
    assert np.isfinite(out["people"]).all() and np.isfinite(out["peaks"]).all()
    assert len(out["peaks"]) <= heat.shape[0] * max(overrides["max_peaks_per_part"], 1)
