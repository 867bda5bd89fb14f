"""Bounds of the grouping: extreme scales and thresholds, candidate-pair and sample limits,
Ctrl-C, and (slow) the C++ core under UBSan with unbounded values."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from simplepose.decode.grouping import group, load_extension
from simplepose.decode.params import BOUNDS, GroupingParams
from simplepose.errors import InputError

REPO = Path(__file__).resolve().parents[1]
CHAIN = np.array([[0, 1], [1, 2]])  # a 3-part layout: the grouping takes any limb list


def two_peaks(h=16, w=16, paf=False):
    """Parts 0 and 1 with one peak each, part 2 empty; limb maps of ones."""
    heat = np.zeros((3, h, w), np.float32)
    heat[0, 3, 3] = 1.0
    heat[1, h - 4, w - 4] = 1.0
    shape = (2, 2, h, w) if paf else (2, h, w)
    return heat, np.full(shape, 0.7, np.float32)


def noise(parts, h, w, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((parts, h, w), dtype=np.float32)


def test_binding_and_params_share_one_bounds_table():
    assert load_extension().BOUNDS == BOUNDS
    names = {"scale_x", "scale_y", "image_height"} | {
        k for k, v in GroupingParams().to_dict().items() if not isinstance(v, (bool, str))
    }
    assert set(BOUNDS) == names


@pytest.mark.parametrize("backend", ["cpp", "reference"])
@pytest.mark.parametrize("name", ["scale_x", "scale_y", "image_height"])
@pytest.mark.parametrize("value", [1e300, np.inf, -1e300, np.nan, 0.0])
def test_unbounded_scales_are_one_clear_error(backend, name, value):
    heat, limb_maps = two_peaks()
    with pytest.raises(InputError, match=f"^{name} must be a finite number in"):
        group(heat, limb_maps, CHAIN, GroupingParams(), backend=backend, **{name: value})


@pytest.mark.parametrize("paf", [False, True])
def test_largest_allowed_scales_and_thresholds_give_the_reference_result(paf):
    """At the bounds the limb lengths reach 1e7 px: the sample count clamps to
    limb_max_samples, the length prior rejects the limb, and both backends agree."""
    heat, limb_maps = two_peaks(paf=paf)
    hi = BOUNDS["scale_x"][1]
    for sx, sy, image_height in [
        (hi, hi, BOUNDS["image_height"][1]),
        (hi, 1.0, 100.0),
        (1e-6, 1e-6, 1e-6),
    ]:
        for thr in (BOUNDS["peak_threshold"][0], 0.5, BOUNDS["peak_threshold"][1]):
            params = GroupingParams(
                peak_threshold=thr, limb_sample_threshold=thr, min_parts=1, min_mean_score=0.0
            )
            kw = dict(scale_x=sx, scale_y=sy, image_height=image_height)  # noqa: C408
            a = group(heat, limb_maps, CHAIN, params, **kw)
            b = group(heat, limb_maps, CHAIN, params, backend="reference", **kw)
            np.testing.assert_array_equal(a.part_ids, b.part_ids)
            np.testing.assert_allclose(a.scores, b.scores, atol=1e-9)
            if thr == BOUNDS["peak_threshold"][1]:
                assert len(a.peaks) == 0  # nothing reaches 1e6
    # a 1e7 px limb in a 1e9 px tall image is short enough: the pair is joined
    res = group(heat, limb_maps, CHAIN, GroupingParams(min_parts=1), scale_x=hi, scale_y=hi,
                image_height=BOUNDS["image_height"][1])
    assert len(res) == 1 and res.counts[0] == 2


def test_max_peaks_per_part_is_bounded():
    with pytest.raises(
        InputError,
        match=re.escape(
            "GroupingParams.max_peaks_per_part must be a finite number in [1, 1000000], "
            "got 1000000000"
        ),
    ):
        GroupingParams(max_peaks_per_part=10**9)
    with pytest.raises(
        ValueError, match=re.escape("max_peaks_per_part must be a finite number in")
    ):
        load_extension().find_peaks(noise(1, 8, 8), 0.1, 10**9)


def test_noise_with_unlimited_peaks_fails_fast_with_the_pair_count():
    """Issue 10's case: a noise map with max_peaks_per_part at its maximum is refused
    before any limb is scored (it took minutes and gigabytes), naming the count."""
    heat = noise(18, 200, 200)  # thousands of local maxima per part
    limb_maps = noise(19, 200, 200, seed=1)[:, None].repeat(2, axis=1)
    params = GroupingParams(max_peaks_per_part=BOUNDS["max_peaks_per_part"][1], peak_threshold=0.0)
    from simplepose.skeleton import OPENPOSE18

    with pytest.raises(
        InputError,
        match=r"the peaks give \d{7,} candidate limb pairs, above max_candidate_pairs=1000000",
    ):
        group(heat, np.ascontiguousarray(limb_maps), OPENPOSE18.limbs_array, params)


@pytest.mark.parametrize("backend", ["cpp", "reference"])
def test_pair_and_sample_limits_name_the_count_in_both_backends(backend):
    heat = noise(3, 24, 24)
    limb_maps = noise(2, 24, 24, seed=1)
    peaks = load_extension().find_peaks(heat, 0.0, 1000)
    counts = np.bincount(peaks[:, 3].astype(int), minlength=3)
    pairs = int(counts[0] * counts[1] + counts[1] * counts[2])
    base = GroupingParams(peak_threshold=0.0, max_peaks_per_part=1000)
    with pytest.raises(
        InputError,
        match=f"the peaks give {pairs} candidate limb pairs, "
        f"above max_candidate_pairs={pairs - 1};",
    ):
        group(heat, limb_maps, CHAIN, base.replace(max_candidate_pairs=pairs - 1), backend=backend)
    with pytest.raises(
        InputError,
        match=f"the peaks give {pairs} candidate limb pairs x limb_max_samples=20 limb samples, "
        f"above max_candidate_samples={20 * pairs - 1};",
    ):
        group(
            heat,
            limb_maps,
            CHAIN,
            base.replace(max_candidate_samples=20 * pairs - 1),
            backend=backend,
        )
    # exactly at the limits: runs
    group(
        heat,
        limb_maps,
        CHAIN,
        base.replace(max_candidate_pairs=pairs, max_candidate_samples=20 * pairs),
        backend=backend,
    )


def test_ctrl_c_interrupts_a_long_cpp_run():
    """A run of ~1e10 limb samples (minutes) stops within seconds of SIGINT with
    KeyboardInterrupt: the C++ loop polls for signals without holding the GIL."""
    script = textwrap.dedent(
        """
        import signal, sys, time
        import numpy as np
        # a parent may start us with SIGINT ignored (a background job of a non-interactive
        # shell, as some CI runners are); the test is about the C++ polling, so restore it
        signal.signal(signal.SIGINT, signal.default_int_handler)
        from simplepose.decode.grouping import group
        from simplepose.decode.params import GroupingParams
        rng = np.random.default_rng(0)
        heat = rng.random((2, 100, 100), dtype=np.float32)
        limb = np.ones((1, 100, 100), np.float32)
        params = GroupingParams(peak_threshold=0.0, max_peaks_per_part=1_000_000,
                                limb_max_samples=10_000, max_candidate_pairs=10_000_000,
                                max_candidate_samples=100_000_000_000, length_prior=False)
        print("start", flush=True)
        t0 = time.perf_counter()
        try:
            group(heat, limb, [[0, 1]], params, scale_x=1000.0, scale_y=1000.0)
        except KeyboardInterrupt:
            print(f"interrupted {time.perf_counter() - t0:.2f}", flush=True)
            sys.exit(3)
        print("finished", flush=True)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout.readline().strip() == "start"
        time.sleep(1.5)  # well inside the C++ call (it needs minutes)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        waited = time.monotonic() - sent
    finally:
        proc.kill()
    assert proc.returncode == 3, (out, err)
    assert out.startswith("interrupted"), out
    assert waited < 30  # polled every ~4M samples (milliseconds); generous for a busy machine


@pytest.mark.slow
def test_cpp_core_has_no_undefined_behaviour_on_unbounded_values(tmp_path):
    """Build the algorithm with UBSan and drive it directly (no binding bounds) with
    scales and thresholds of +-1e300, inf and 1e39: a float-to-int cast of an infinite
    limb length or a double-to-float overflow aborts the run."""
    cxx = shutil.which(os.environ.get("CXX", "g++")) or shutil.which("c++")
    if cxx is None:
        pytest.skip("no C++ compiler")
    flags = [
        "-std=c++17",
        "-O1",
        "-g",
        "-fsanitize=undefined,float-cast-overflow",
        "-fno-sanitize-recover=all",
    ]
    probe = tmp_path / "probe.cpp"
    probe.write_text("int main() { return 0; }\n")
    if subprocess.run(
        [cxx, *flags, str(probe), "-o", str(tmp_path / "probe")], capture_output=True, check=False
    ).returncode:
        pytest.skip("the compiler has no UBSan runtime")
    exe = tmp_path / "extreme_values"
    sources = [
        REPO / "csrc" / "src" / "grouping.cpp",
        REPO / "csrc" / "tests" / "extreme_values.cpp",
    ]
    build = subprocess.run(
        [cxx, *flags, "-I", str(REPO / "csrc" / "include"), *map(str, sources), "-o", str(exe)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert build.returncode == 0, build.stderr
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0 and "runtime error" not in run.stderr, run.stderr
    assert "60 cases clean" in run.stdout


# ------------------------------------------------------------------ limb length outliers
CHAIN5 = np.array([[0, 1], [1, 2], [2, 3], [3, 4]])


def chain_maps(xs, h=8, w=64):
    """Five parts with one peak each on row 4 at ``xs`` (heatmap px); limb maps of ones, so
    every candidate passes and the assembly gives one person with all five parts."""
    heat = np.zeros((5, h, w), np.float32)
    for part, x in enumerate(xs):
        heat[part, 4, x] = 1.0
    return heat, np.ones((4, h, w), np.float32)


@pytest.mark.parametrize("backend", ["cpp", "reference"])
def test_a_limb_far_longer_than_the_person_is_cut_with_its_subtree(backend):
    base = GroupingParams(length_prior=False, min_parts=1, min_mean_score=0.0)
    heat, limb_maps = chain_maps([2, 6, 10, 14, 50])  # lengths 4, 4, 4, 36
    whole = group(heat, limb_maps, CHAIN5, base, backend=backend)
    assert len(whole) == 1 and whole.counts[0] == 5
    cut = group(heat, limb_maps, CHAIN5, base.replace(limb_length_outlier=2.0), backend=backend)
    assert cut.counts[0] == 4 and cut.part_ids[0, 4] == -1
    assert cut.totals[0] == pytest.approx(whole.totals[0] - 1.0 - 1.0)  # its peak and limb score
    # the long limb in the middle: the parts beyond it go too
    heat, limb_maps = chain_maps([2, 6, 10, 46, 50])  # lengths 4, 4, 36, 4
    cut = group(heat, limb_maps, CHAIN5, base.replace(limb_length_outlier=2.0), backend=backend)
    assert cut.part_ids[0].tolist()[3:] == [-1, -1] and cut.counts[0] == 3
    # a prior saying that limb is 9 times as long as the others keeps it
    priors = (1.0, 1.0, 9.0, 1.0)
    kept = group(
        heat,
        limb_maps,
        CHAIN5,
        base.replace(limb_length_outlier=2.0, limb_length_priors=priors),
        backend=backend,
    )
    assert kept.counts[0] == 5


@pytest.mark.parametrize("backend", ["cpp", "reference"])
def test_limb_length_priors_must_match_the_limbs(backend):
    heat, limb_maps = chain_maps([2, 6, 10, 14, 18])
    params = GroupingParams(limb_length_outlier=2.0, limb_length_priors=(1.0, 1.0))
    with pytest.raises(
        InputError,
        match=re.escape("params['limb_length_priors'] has 2 values but limbs has 4 rows"),
    ):
        group(heat, limb_maps, CHAIN5, params, backend=backend)
    with pytest.raises(
        InputError,
        match=re.escape("GroupingParams.limb_length_priors[1] must be a finite number in"),
    ):
        GroupingParams(limb_length_priors=(1.0, 0.0, 1.0, 1.0))
