"""Pure-Python reference of the bottom-up keypoint assignment.

Written for reading, not for speed: it is the test oracle of the C++ extension
(``simplepose._grouping``), which must return the same people on every input. Every step
mirrors ``csrc/src/grouping.cpp`` operation for operation (same sample positions, same
summation order, same tie-breaks), so results agree to floating-point noise.

Coordinates: peaks and people are in *heatmap px* (cell index units: cell ``i`` has its
centre at ``x = i``). Lengths used by thresholds are in *original px*, obtained with the
heatmap-px -> original-px scale factors ``scale_x``, ``scale_y``.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import InputError
from .params import GroupingParams

__all__ = ["reference_find_peaks", "reference_group"]


# --------------------------------------------------------------------------- A. peaks
def _refine_offset(left: float, centre: float, right: float) -> float:
    """Sub-cell offset of a peak from a parabola fitted to the log values of three
    neighbouring cells: exact for a sampled Gaussian, clamped to half a cell."""
    eps = 1e-12
    lo, c, r = math.log(max(left, eps)), math.log(max(centre, eps)), math.log(max(right, eps))
    denom = lo - 2.0 * c + r
    if denom >= 0.0:  # not strictly concave: no reliable curvature
        return 0.0
    offset = 0.5 * (lo - r) / denom
    return min(0.5, max(-0.5, offset))


def _is_local_max(hm: np.ndarray, y: int, x: int) -> bool:
    """3x3 maximum with a raster-order tie-break: strictly greater than the earlier
    neighbours (above, or left on the same row), at least equal to the later ones. A
    plateau of equal cells therefore yields exactly one peak."""
    h, w = hm.shape
    v = hm[y, x]
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            yy, xx = y + dy, x + dx
            if (dy == 0 and dx == 0) or not (0 <= yy < h and 0 <= xx < w):
                continue
            earlier = dy < 0 or (dy == 0 and dx < 0)
            if earlier and not v > hm[yy, xx]:
                return False
            if not earlier and not v >= hm[yy, xx]:
                return False
    return True


def reference_find_peaks(heatmaps: np.ndarray, threshold: float, max_per_part: int) -> np.ndarray:
    """Peaks of every part map, refined to sub-cell precision.

    Args:
        heatmaps: (P, H, W) float32 keypoint maps.
        threshold: minimum peak value.
        max_per_part: keep the highest this many per part (equal values: raster order).

    Returns:
        (N, 4) float64 rows ``x, y, score, part`` in heatmap px, grouped by part; within a
        part, peaks are in raster order. ``score`` is the map value at the peak cell.
    """
    rows = []
    num_parts, h, w = heatmaps.shape
    for part in range(num_parts):
        hm = heatmaps[part].astype(np.float64)
        # Plain scan of every cell in raster order: the obvious definition, kept free of
        # vectorised shortcuts because this function is the oracle the C++ is tested against.
        cells = [
            (y, x) for y in range(h) for x in range(w) if hm[y, x] >= threshold and _is_local_max(hm, y, x)
        ]
        if len(cells) > max_per_part:
            best_first = sorted(range(len(cells)), key=lambda i: -hm[cells[i]])  # stable
            cells = [cells[i] for i in sorted(best_first[:max_per_part])]
        for y, x in cells:
            dx = _refine_offset(hm[y, x - 1], hm[y, x], hm[y, x + 1]) if 0 < x < w - 1 else 0.0
            dy = _refine_offset(hm[y - 1, x], hm[y, x], hm[y + 1, x]) if 0 < y < h - 1 else 0.0
            rows.append((x + dx, y + dy, hm[y, x], part))
    return np.asarray(rows, dtype=np.float64).reshape(-1, 4)


# ------------------------------------------------------------------ B. limb candidates
def _bilinear(m: np.ndarray, x: float, y: float) -> float:
    """Bilinear sample of a (H, W) map at heatmap px (x, y), clamped to the map."""
    h, w = m.shape
    x = min(max(x, 0.0), w - 1.0)
    y = min(max(y, 0.0), h - 1.0)
    x0, y0 = math.floor(x), math.floor(y)
    x1, y1 = min(x0 + 1, w - 1), min(y0 + 1, h - 1)
    fx, fy = x - x0, y - y0
    top = float(m[y0, x0]) * (1.0 - fx) + float(m[y0, x1]) * fx
    bottom = float(m[y1, x0]) * (1.0 - fx) + float(m[y1, x1]) * fx
    return top * (1.0 - fy) + bottom * fy


def _sample_count(length: float, max_samples: int) -> int:
    """round(length + 1) samples, clamped to [2, max_samples] before the conversion to int
    (a huge or infinite length must not reach it)."""
    n = math.floor(length + 1.5) if math.isfinite(length) else math.inf
    if not n < max_samples:
        return max(max_samples, 2)
    return max(int(max(n, 0.0)), 2)


def _score_candidate(limb_map, pa, pb, length, image_height, p: GroupingParams):
    """Limb score of connecting peaks ``pa`` -> ``pb`` (rows of the peak table), or None
    when rejected. ``limb_map`` is (H, W) for a Gaussian limb map or (2, H, W) for a PAF."""
    xa, ya, xb, yb = pa[0], pa[1], pb[0], pb[1]
    n = _sample_count(length, p.limb_max_samples)
    if limb_map.ndim == 3:  # PAF: project the field on the unit limb direction
        dxh, dyh = xb - xa, yb - ya
        norm = math.sqrt(dxh * dxh + dyh * dyh)
        if norm < 1e-12:
            return None
        ux, uy = dxh / norm, dyh / norm
    total, passed = 0.0, 0
    for i in range(n):
        t = i / (n - 1)
        x, y = xa + t * (xb - xa), ya + t * (yb - ya)
        if limb_map.ndim == 3:
            v = _bilinear(limb_map[0], x, y) * ux + _bilinear(limb_map[1], x, y) * uy
        else:
            v = _bilinear(limb_map, x, y)
        total += v
        passed += v > p.limb_sample_threshold
    score = total / n
    if p.length_prior:
        score += min(0.5 * image_height / length - 1.0, 0.0)
    if passed >= p.limb_pass_ratio * n and score > 0.0:
        return score
    return None


def _limb_connections(peaks, parts_a, parts_b, limb_map, scale_x, scale_y, image_height, p):
    """Greedy one-to-one connections of one limb type: list of (id_a, id_b, score, length)."""
    candidates = []
    for ia in parts_a:
        for ib in parts_b:
            pa, pb = peaks[ia], peaks[ib]
            dx, dy = (pb[0] - pa[0]) * scale_x, (pb[1] - pa[1]) * scale_y
            length = math.sqrt(dx * dx + dy * dy)  # original px
            if length < 1e-6:
                continue
            score = _score_candidate(limb_map, pa, pb, length, image_height, p)
            if score is None:
                continue
            w0, w1, w2 = p.priority_weights
            priority = w0 * score + w1 * pa[2] + w2 * pb[2]
            candidates.append((priority, ia, ib, score, length))
    candidates.sort(key=lambda c: -c[0])  # stable: equal priorities keep (a, b) order
    used_a, used_b, kept = set(), set(), []
    limit = min(len(parts_a), len(parts_b))
    for _, ia, ib, score, length in candidates:
        if ia in used_a or ib in used_b:
            continue
        used_a.add(ia)
        used_b.add(ib)
        kept.append((ia, ib, score, length))
        if len(kept) >= limit:
            break
    return kept


# ------------------------------------------------------------------- C. assembly
class _Person:
    """A person under assembly: per part the peak id and the limb score it came with."""

    def __init__(self, num_parts: int):
        self.ids = [-1] * num_parts
        self.link = [0.0] * num_parts
        self.total = 0.0
        self.count = 0
        self.max_len = 0.0


def _assemble(peaks, limbs, connections_per_limb, num_parts, p: GroupingParams):
    people: list[_Person] = []
    for k, (part_a, part_b) in enumerate(limbs):
        for ia, ib, s, length in connections_per_limb[k]:
            found = [
                j for j, q in enumerate(people) if q.ids[part_a] == ia or q.ids[part_b] == ib
            ][:2]  # a third match is ignored, as in the reference
            if len(found) == 1:
                q = people[found[0]]
                _attach(q, part_b, ib, s, length, peaks, p)
                if p.attach_from_end and q.ids[part_a] == -1 and q.ids[part_b] == ib:
                    _attach(q, part_a, ia, s, length, peaks, p)
            elif len(found) == 2:
                q1, q2 = people[found[0]], people[found[1]]
                disjoint = all(a == -1 or b == -1 for a, b in zip(q1.ids, q2.ids))
                if not disjoint:
                    continue
                tol = min(_min_link(q1), _min_link(q2))
                if s < p.merge_tolerance * tol or p.limb_length_rate * q1.max_len <= length:
                    continue
                for part in range(num_parts):
                    if q2.ids[part] != -1:
                        q1.ids[part], q1.link[part] = q2.ids[part], q2.link[part]
                q1.count += q2.count
                q1.total += q2.total + s
                q1.max_len = max(q1.max_len, q2.max_len, length)
                del people[found[1]]
            else:
                q = _Person(num_parts)
                q.ids[part_a], q.link[part_a] = ia, s
                q.ids[part_b], q.link[part_b] = ib, s
                q.count = 2
                q.total = peaks[ia][2] + peaks[ib][2] + s
                q.max_len = length
                people.append(q)
    return people


def _attach(q: _Person, part: int, pid: int, s: float, length: float, peaks, p) -> None:
    """Single-match rule of SPEC 3.9 C.2 for one endpoint ``part`` with peak ``pid``."""
    fits = p.limb_length_rate * q.max_len > length
    if q.ids[part] == -1:
        if fits:
            q.ids[part], q.link[part] = pid, s
            q.count += 1
            q.total += peaks[pid][2] + s
            q.max_len = max(q.max_len, length)
    elif q.ids[part] != pid:
        if q.link[part] < s and fits:  # a better-connected peak replaces the part
            q.total -= peaks[q.ids[part]][2] + q.link[part]
            q.ids[part], q.link[part] = pid, s
            q.total += peaks[pid][2] + s
            q.max_len = max(q.max_len, length)
    elif q.link[part] <= s:  # same peak through a stronger limb: refresh its limb score
        q.total -= peaks[pid][2] + q.link[part]
        q.link[part] = s
        q.total += peaks[pid][2] + s
        q.max_len = max(q.max_len, length)


def _min_link(q: _Person) -> float:
    return min(s for pid, s in zip(q.ids, q.link) if pid != -1)


# --------------------------------------------------------------------------- driver
def reference_group(
    heatmaps: np.ndarray,
    limb_maps: np.ndarray,
    limbs,
    params: GroupingParams | None = None,
    scale_x: float = 1.0,
    scale_y: float = 1.0,
    image_height: float | None = None,
) -> dict:
    """Group keypoint peaks into people.

    Args:
        heatmaps: (P, H, W) float32 keypoint maps.
        limb_maps: (L, H, W) Gaussian limb maps, or (L, 2, H, W) PAFs (x, y per limb).
        limbs: (L, 2) part indices (from, to), in processing order.
        params: thresholds (default: ``GroupingParams()``).
        scale_x, scale_y: heatmap px -> original px scale factors (for lengths).
        image_height: original image height (px) for the length prior; default H*scale_y.

    Returns:
        The dict of arrays the binding returns (the fields of ``decode.grouping.GroupingResult``,
        which wraps it), in heatmap px.
    """
    params = GroupingParams() if params is None else params
    num_parts, h, _ = heatmaps.shape
    limbs = np.asarray(limbs, dtype=np.int64).reshape(-1, 2)
    if image_height is None:
        image_height = h * scale_y
    peaks = reference_find_peaks(heatmaps, params.peak_threshold, params.max_peaks_per_part)
    ids_by_part = [[i for i in range(len(peaks)) if int(peaks[i, 3]) == part] for part in range(num_parts)]
    _check_limits(ids_by_part, limbs.tolist(), params)
    connections = []
    for k, (part_a, part_b) in enumerate(limbs.tolist()):
        if not ids_by_part[part_a] or not ids_by_part[part_b]:
            connections.append([])
            continue
        ids_a, ids_b = ids_by_part[part_a], ids_by_part[part_b]
        connections.append(
            _limb_connections(peaks, ids_a, ids_b, limb_maps[k], scale_x, scale_y, image_height, params)
        )
    people = _assemble(peaks, limbs.tolist(), connections, num_parts, params)
    if params.limb_length_outlier > 0.0:
        for q in people:
            _remove_long_limbs(q, peaks, limbs.tolist(), params, scale_x, scale_y)
    people = [q for q in people if q.count >= params.min_parts and q.total / q.count >= params.min_mean_score]
    return _to_result(peaks, people, num_parts, params)


def _remove_long_limbs(q: _Person, peaks, limbs, p: GroupingParams, scale_x, scale_y) -> None:
    """Limb length outliers of one assembled person (``GroupingParams.limb_length_outlier``).

    The person's parts are spanned by a tree grown from the first endpoint of the first limb
    (processing order) that joins two of its parts: passes over the limbs in order attach
    each unreached endpoint of a limb whose other endpoint is reached, until none is left.
    Tree-limb lengths (original px) divided by their priors estimate the person's scale; a
    part whose normalised length exceeds ``outlier x`` their median is removed with its
    subtree."""
    num_parts = len(q.ids)
    parent, norm, reached, values = [-1] * num_parts, [0.0] * num_parts, [False] * num_parts, []
    for a, b in limbs:
        if q.ids[a] != -1 and q.ids[b] != -1 and a != b:
            reached[a] = True  # the root
            break
    grew = True
    while grew:
        grew = False
        for k, (a, b) in enumerate(limbs):
            if q.ids[a] == -1 or q.ids[b] == -1 or reached[a] == reached[b]:
                continue
            src, dst = (a, b) if reached[a] else (b, a)
            pa, pb = peaks[q.ids[src]], peaks[q.ids[dst]]
            dx, dy = (pb[0] - pa[0]) * scale_x, (pb[1] - pa[1]) * scale_y
            prior = p.limb_length_priors[k] if p.limb_length_priors else 1.0
            reached[dst] = True
            parent[dst] = src
            norm[dst] = math.sqrt(dx * dx + dy * dy) / prior
            values.append(norm[dst])
            grew = True
    if len(values) < 3:
        return
    values.sort()
    m = len(values)
    median = 0.5 * (values[(m - 1) // 2] + values[m // 2])
    if not median > 0.0:  # coincident peaks: no scale
        return
    removed = [parent[i] != -1 and norm[i] > p.limb_length_outlier * median for i in range(num_parts)]
    changed = True
    while changed:
        changed = False
        for i in range(num_parts):
            if not removed[i] and parent[i] != -1 and removed[parent[i]]:
                removed[i] = changed = True
    for i in range(num_parts):
        if removed[i]:
            q.total -= peaks[q.ids[i]][2] + q.link[i]
            q.ids[i], q.link[i] = -1, 0.0
            q.count -= 1


def _check_limits(ids_by_part, limbs, p: GroupingParams) -> None:
    """Refuse, before any limb is scored, peaks that would need more candidate pairs
    (memory) or limb samples (time) than ``p`` allows; the message names the count."""
    pairs = sum(len(ids_by_part[a]) * len(ids_by_part[b]) for a, b in limbs)
    hint = "; raise peak_threshold or lower max_peaks_per_part (the maps may be noise)"
    if pairs > p.max_candidate_pairs:
        raise InputError(
            f"the peaks give {pairs} candidate limb pairs, above max_candidate_pairs={p.max_candidate_pairs}{hint}"
        )
    if pairs > p.max_candidate_samples // p.limb_max_samples:
        raise InputError(
            f"the peaks give {pairs} candidate limb pairs x limb_max_samples={p.limb_max_samples} limb samples, "
            f"above max_candidate_samples={p.max_candidate_samples}{hint}"
        )


def _to_result(peaks, people, num_parts, p: GroupingParams) -> dict:
    m = len(people)
    out = np.zeros((m, num_parts, 3), dtype=np.float64)
    ids = np.full((m, num_parts), -1, dtype=np.int64)
    scores = np.zeros(m, dtype=np.float64)
    totals = np.zeros(m, dtype=np.float64)
    counts = np.zeros(m, dtype=np.int64)
    for j, q in enumerate(people):
        for part, pid in enumerate(q.ids):
            if pid != -1:
                out[j, part] = peaks[pid][:3]
                ids[j, part] = pid
        totals[j], counts[j] = q.total, q.count
        scores[j] = q.total / q.count if p.person_score == "mean" else 1.0 - 1.0 / q.total
    return {"peaks": peaks, "people": out, "part_ids": ids, "scores": scores, "totals": totals, "counts": counts}
