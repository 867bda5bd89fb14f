// Bottom-up keypoint assignment; see include/simplepose/grouping.hpp and the Python
// reference simplepose/decode/reference_grouping.py, which this file mirrors.
#include "simplepose/grouping.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <string>

namespace simplepose {
namespace {

// Polls the caller's stop callback about every kInterval units of work (a unit is one limb
// sample, one heatmap row or one person visited), so a long run can be interrupted without
// the callback's cost (it may take the Python GIL) showing on ordinary runs.
class Ticker {
 public:
  explicit Ticker(const StopCallback& stop) : stop_(stop) {}
  void tick(int64_t units) {
    work_ += units;
    if (work_ < kInterval) return;
    work_ = 0;
    if (stop_ && stop_()) throw Interrupted();
  }

 private:
  static constexpr int64_t kInterval = int64_t{1} << 22;
  const StopCallback& stop_;
  int64_t work_ = 0;
};

// Number of samples along a limb of `length` original px: round(length + 1), clamped to
// [2, max_samples] *before* the cast (a huge or infinite length must not reach the
// float-to-int conversion, which would be undefined behaviour).
int64_t sample_count(double length, int64_t max_samples) {
  const double n = std::floor(length + 1.5);
  if (!(n < static_cast<double>(max_samples))) return std::max<int64_t>(max_samples, 2);  // NaN too
  return std::max<int64_t>(static_cast<int64_t>(std::max(n, 0.0)), 2);
}

// Sub-cell offset from a parabola through the log values of three neighbouring cells:
// exact for a sampled Gaussian, clamped to half a cell.
double refine_offset(double left, double centre, double right) {
  const double eps = 1e-12;
  const double lo = std::log(std::max(left, eps));
  const double c = std::log(std::max(centre, eps));
  const double r = std::log(std::max(right, eps));
  const double denom = lo - 2.0 * c + r;
  if (denom >= 0.0) return 0.0;  // not strictly concave: no reliable curvature
  const double offset = 0.5 * (lo - r) / denom;
  return std::min(0.5, std::max(-0.5, offset));
}

// 3x3 maximum; strictly greater than earlier neighbours (raster order), >= later ones.
bool is_local_max(const float* hm, int64_t h, int64_t w, int64_t y, int64_t x) {
  const double v = hm[y * w + x];
  for (int64_t dy = -1; dy <= 1; ++dy) {
    const int64_t yy = y + dy;
    if (yy < 0 || yy >= h) continue;
    for (int64_t dx = -1; dx <= 1; ++dx) {
      const int64_t xx = x + dx;
      if ((dy == 0 && dx == 0) || xx < 0 || xx >= w) continue;
      const double n = hm[yy * w + xx];
      const bool earlier = dy < 0 || (dy == 0 && dx < 0);
      if (earlier ? !(v > n) : !(v >= n)) return false;
    }
  }
  return true;
}

double bilinear(const float* m, int64_t h, int64_t w, double x, double y) {
  x = std::min(std::max(x, 0.0), static_cast<double>(w - 1));
  y = std::min(std::max(y, 0.0), static_cast<double>(h - 1));
  const int64_t x0 = static_cast<int64_t>(std::floor(x));
  const int64_t y0 = static_cast<int64_t>(std::floor(y));
  const int64_t x1 = std::min(x0 + 1, w - 1);
  const int64_t y1 = std::min(y0 + 1, h - 1);
  const double fx = x - static_cast<double>(x0);
  const double fy = y - static_cast<double>(y0);
  const double top =
      static_cast<double>(m[y0 * w + x0]) * (1.0 - fx) + static_cast<double>(m[y0 * w + x1]) * fx;
  const double bottom =
      static_cast<double>(m[y1 * w + x0]) * (1.0 - fx) + static_cast<double>(m[y1 * w + x1]) * fx;
  return top * (1.0 - fy) + bottom * fy;
}

struct Candidate {
  double priority;
  int64_t a, b;
  double score, length;
};

struct Connection {
  int64_t a, b;
  double score, length;
};

// Limb score of a -> b, or false when rejected. field_x/field_y: the limb's maps
// (field_y == nullptr for a Gaussian limb map).
bool score_candidate(const float* field_x, const float* field_y, int64_t h, int64_t w,
                     const Peak& pa, const Peak& pb, double length, double image_height,
                     const GroupingParams& p, double* out_score) {
  const int64_t n = sample_count(length, p.limb_max_samples);
  double ux = 0.0, uy = 0.0;
  if (field_y != nullptr) {
    const double dxh = pb.x - pa.x, dyh = pb.y - pa.y;
    const double norm = std::sqrt(dxh * dxh + dyh * dyh);
    if (norm < 1e-12) return false;
    ux = dxh / norm;
    uy = dyh / norm;
  }
  double total = 0.0;
  int64_t passed = 0;
  const double needed = p.limb_pass_ratio * static_cast<double>(n);
  for (int64_t i = 0; i < n; ++i) {
    // Exact early exit: even if every remaining sample passed, the pass count could not
    // reach `needed`, so the candidate is rejected whatever the rest of the samples hold.
    if (static_cast<double>(passed + (n - i)) < needed) return false;
    const double t = static_cast<double>(i) / static_cast<double>(n - 1);
    const double x = pa.x + t * (pb.x - pa.x);
    const double y = pa.y + t * (pb.y - pa.y);
    double v;
    if (field_y != nullptr) {
      v = bilinear(field_x, h, w, x, y) * ux + bilinear(field_y, h, w, x, y) * uy;
    } else {
      v = bilinear(field_x, h, w, x, y);
    }
    total += v;
    passed += v > p.limb_sample_threshold ? 1 : 0;
  }
  double score = total / static_cast<double>(n);
  if (p.length_prior) score += std::min(0.5 * image_height / length - 1.0, 0.0);
  if (static_cast<double>(passed) >= needed && score > 0.0) {
    *out_score = score;
    return true;
  }
  return false;
}

std::vector<Connection> limb_connections(const std::vector<Peak>& peaks,
                                         const std::vector<int64_t>& ids_a,
                                         const std::vector<int64_t>& ids_b, const float* field_x,
                                         const float* field_y, int64_t h, int64_t w, double scale_x,
                                         double scale_y, double image_height,
                                         const GroupingParams& p, Ticker& ticker) {
  std::vector<Candidate> candidates;
  candidates.reserve(ids_a.size() * ids_b.size());
  for (int64_t ia : ids_a) {
    for (int64_t ib : ids_b) {
      const Peak& pa = peaks[ia];
      const Peak& pb = peaks[ib];
      const double dx = (pb.x - pa.x) * scale_x, dy = (pb.y - pa.y) * scale_y;
      const double length = std::sqrt(dx * dx + dy * dy);  // original px
      if (length < 1e-6) continue;
      ticker.tick(sample_count(length, p.limb_max_samples));
      double score;
      if (!score_candidate(field_x, field_y, h, w, pa, pb, length, image_height, p, &score))
        continue;
      const double priority = p.priority_weights[0] * score + p.priority_weights[1] * pa.score +
                              p.priority_weights[2] * pb.score;
      candidates.push_back({priority, ia, ib, score, length});
    }
  }
  // Stable: equal priorities keep their (a, b) generation order, as in the reference.
  std::stable_sort(candidates.begin(), candidates.end(),
                   [](const Candidate& l, const Candidate& r) { return l.priority > r.priority; });
  std::vector<Connection> kept;
  std::vector<int64_t> used_a, used_b;
  const size_t limit = std::min(ids_a.size(), ids_b.size());
  for (const Candidate& c : candidates) {
    if (std::find(used_a.begin(), used_a.end(), c.a) != used_a.end() ||
        std::find(used_b.begin(), used_b.end(), c.b) != used_b.end())
      continue;
    used_a.push_back(c.a);
    used_b.push_back(c.b);
    kept.push_back({c.a, c.b, c.score, c.length});
    if (kept.size() >= limit) break;
  }
  return kept;
}

// Single-match rule (SPEC 3.9 C.2) for one endpoint `part` with peak `pid`.
void attach(Person& q, int64_t part, int64_t pid, double s, double length,
            const std::vector<Peak>& peaks, const GroupingParams& p) {
  const bool fits = p.limb_length_rate * q.max_len > length;
  if (q.ids[part] == -1) {
    if (fits) {
      q.ids[part] = pid;
      q.link[part] = s;
      q.count += 1;
      q.total += peaks[pid].score + s;
      q.max_len = std::max(q.max_len, length);
    }
  } else if (q.ids[part] != pid) {
    if (q.link[part] < s && fits) {  // a better-connected peak replaces the part
      q.total -= peaks[q.ids[part]].score + q.link[part];
      q.ids[part] = pid;
      q.link[part] = s;
      q.total += peaks[pid].score + s;
      q.max_len = std::max(q.max_len, length);
    }
  } else if (q.link[part] <= s) {  // same peak through a stronger limb: refresh
    q.total -= peaks[pid].score + q.link[part];
    q.link[part] = s;
    q.total += peaks[pid].score + s;
    q.max_len = std::max(q.max_len, length);
  }
}

double min_link(const Person& q) {
  double m = HUGE_VAL;
  for (size_t i = 0; i < q.ids.size(); ++i)
    if (q.ids[i] != -1) m = std::min(m, q.link[i]);
  return m;
}

std::vector<Person> assemble(const std::vector<Peak>& peaks, const std::vector<int64_t>& limbs,
                             const std::vector<std::vector<Connection>>& connections,
                             int64_t num_parts, const GroupingParams& p, Ticker& ticker) {
  std::vector<Person> people;
  const size_t num_limbs = limbs.size() / 2;
  for (size_t k = 0; k < num_limbs; ++k) {
    const int64_t part_a = limbs[2 * k], part_b = limbs[2 * k + 1];
    for (const Connection& c : connections[k]) {
      ticker.tick(static_cast<int64_t>(people.size()) + 1);
      size_t found[2] = {0, 0};
      int nfound = 0;
      for (size_t j = 0; j < people.size() && nfound < 2; ++j) {
        if (people[j].ids[part_a] == c.a || people[j].ids[part_b] == c.b) found[nfound++] = j;
      }
      if (nfound == 1) {
        Person& q = people[found[0]];
        attach(q, part_b, c.b, c.score, c.length, peaks, p);
        if (p.attach_from_end && q.ids[part_a] == -1 && q.ids[part_b] == c.b)
          attach(q, part_a, c.a, c.score, c.length, peaks, p);
      } else if (nfound == 2) {
        Person& q1 = people[found[0]];
        const Person& q2 = people[found[1]];
        bool disjoint = true;
        for (int64_t i = 0; i < num_parts; ++i)
          if (q1.ids[i] != -1 && q2.ids[i] != -1) disjoint = false;
        if (!disjoint) continue;
        const double tol = std::min(min_link(q1), min_link(q2));
        if (c.score < p.merge_tolerance * tol || p.limb_length_rate * q1.max_len <= c.length)
          continue;
        for (int64_t i = 0; i < num_parts; ++i) {
          if (q2.ids[i] != -1) {
            q1.ids[i] = q2.ids[i];
            q1.link[i] = q2.link[i];
          }
        }
        q1.count += q2.count;
        q1.total += q2.total + c.score;
        q1.max_len = std::max(std::max(q1.max_len, q2.max_len), c.length);
        people.erase(people.begin() + static_cast<std::ptrdiff_t>(found[1]));
      } else {
        Person q;
        q.ids.assign(num_parts, -1);
        q.link.assign(num_parts, 0.0);
        q.ids[part_a] = c.a;
        q.link[part_a] = c.score;
        q.ids[part_b] = c.b;
        q.link[part_b] = c.score;
        q.count = 2;
        q.total = peaks[c.a].score + peaks[c.b].score + c.score;
        q.max_len = c.length;
        people.push_back(std::move(q));
      }
    }
  }
  return people;
}

// Limb length outliers of one assembled person (GroupingParams::limb_length_outlier).
// The person's parts are spanned by a tree grown from the first endpoint of the first limb
// (processing order) that joins two of its parts: passes over the limbs in order attach
// each unreached endpoint of a limb whose other endpoint is reached, until none is left.
// Tree-limb lengths (original px) divided by their priors estimate the person's scale; a
// part whose normalised length exceeds outlier x their median is removed with its subtree.
// Mirrors reference_grouping._remove_long_limbs.
void remove_long_limbs(Person& q, const std::vector<Peak>& peaks, const std::vector<int64_t>& limbs,
                       const GroupingParams& p, double scale_x, double scale_y) {
  const size_t num_limbs = limbs.size() / 2;
  const size_t num_parts = q.ids.size();
  std::vector<int64_t> parent(num_parts, -1);
  std::vector<double> norm(num_parts, 0.0);
  std::vector<bool> reached(num_parts, false);
  std::vector<double> values;
  for (size_t k = 0; k < num_limbs; ++k) {
    const auto a = static_cast<size_t>(limbs[2 * k]), b = static_cast<size_t>(limbs[2 * k + 1]);
    if (q.ids[a] != -1 && q.ids[b] != -1 && a != b) {
      reached[a] = true;  // the root
      break;
    }
  }
  for (bool grew = true; grew;) {
    grew = false;
    for (size_t k = 0; k < num_limbs; ++k) {
      const auto a = static_cast<size_t>(limbs[2 * k]), b = static_cast<size_t>(limbs[2 * k + 1]);
      if (q.ids[a] == -1 || q.ids[b] == -1 || reached[a] == reached[b]) continue;
      const size_t from = reached[a] ? a : b, to = reached[a] ? b : a;
      const Peak& pa = peaks[q.ids[from]];
      const Peak& pb = peaks[q.ids[to]];
      const double dx = (pb.x - pa.x) * scale_x, dy = (pb.y - pa.y) * scale_y;
      const double prior = p.limb_length_priors.empty() ? 1.0 : p.limb_length_priors[k];
      reached[to] = true;
      parent[to] = static_cast<int64_t>(from);
      norm[to] = std::sqrt(dx * dx + dy * dy) / prior;
      values.push_back(norm[to]);
      grew = true;
    }
  }
  if (values.size() < 3) return;
  std::sort(values.begin(), values.end());
  const size_t m = values.size();
  const double median = 0.5 * (values[(m - 1) / 2] + values[m / 2]);
  if (!(median > 0.0)) return;  // coincident peaks: no scale
  std::vector<bool> removed(num_parts, false);
  for (size_t i = 0; i < num_parts; ++i)
    removed[i] = parent[i] != -1 && norm[i] > p.limb_length_outlier * median;
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t i = 0; i < num_parts; ++i) {
      if (!removed[i] && parent[i] != -1 && removed[static_cast<size_t>(parent[i])]) {
        removed[i] = true;
        changed = true;
      }
    }
  }
  for (size_t i = 0; i < num_parts; ++i) {
    if (!removed[i]) continue;
    q.total -= peaks[q.ids[i]].score + q.link[i];
    q.ids[i] = -1;
    q.link[i] = 0.0;
    q.count -= 1;
  }
}

// Bit pattern of the smallest float f with (double)f >= threshold (threshold > 0). For
// non-negative floats the IEEE bit patterns order like the values, so an integer compare
// against it is a vectorisable prefilter equivalent to `(double)v >= threshold`.
int32_t threshold_bits(double threshold) {
  // Above the float range no float passes: +inf's pattern is above every finite value's.
  // (Casting such a double to float would be undefined behaviour.)
  if (!(threshold <= static_cast<double>(std::numeric_limits<float>::max()))) return 0x7f800000;
  if (threshold < -static_cast<double>(std::numeric_limits<float>::max()))
    return std::numeric_limits<int32_t>::min();
  float f = static_cast<float>(threshold);
  if (static_cast<double>(f) < threshold)
    f = std::nextafter(f, std::numeric_limits<float>::infinity());
  int32_t bits;
  std::memcpy(&bits, &f, sizeof(bits));
  return bits;
}

// True when some value of the row can pass `(double)v >= threshold`.
bool row_has_candidate(const float* row, int64_t w, double threshold, int32_t tbits) {
  if (!(threshold > 0.0)) return true;  // prefilter only valid for positive thresholds
  int32_t any = 0;
  for (int64_t x = 0; x < w; ++x) {
    int32_t bits;
    std::memcpy(&bits, row + x, sizeof(bits));
    any |= bits >= tbits;  // negative floats have negative bit patterns
  }
  return any != 0;
}

// Refuse, before any limb is scored, peaks that would need more candidate pairs (memory)
// or limb samples (time) than the params allow. Mirrors reference_grouping._check_limits.
void check_limits(const std::vector<std::vector<int64_t>>& ids_by_part,
                  const std::vector<int64_t>& limbs, const GroupingParams& p) {
  // Each product is below 2^62 (peak counts are bounded by the maps); saturate the sum.
  const int64_t cap = int64_t{1} << 62;
  int64_t pairs = 0;
  for (size_t k = 0; k < limbs.size() / 2; ++k) {
    const auto na = static_cast<int64_t>(ids_by_part[static_cast<size_t>(limbs[2 * k])].size());
    const auto nb = static_cast<int64_t>(ids_by_part[static_cast<size_t>(limbs[2 * k + 1])].size());
    pairs = na * nb > cap - pairs ? cap : pairs + na * nb;
  }
  const std::string hint =
      "; raise peak_threshold or lower max_peaks_per_part (the maps may be noise)";
  if (pairs > p.max_candidate_pairs)
    throw LimitError("the peaks give " + std::to_string(pairs) +
                     " candidate limb pairs, above max_candidate_pairs=" +
                     std::to_string(p.max_candidate_pairs) + hint);
  const int64_t per_pair = std::max<int64_t>(p.limb_max_samples, 1);
  if (pairs > p.max_candidate_samples / per_pair)
    throw LimitError("the peaks give " + std::to_string(pairs) +
                     " candidate limb pairs x limb_max_samples=" + std::to_string(per_pair) +
                     " limb samples, above max_candidate_samples=" +
                     std::to_string(p.max_candidate_samples) + hint);
}

}  // namespace

bool all_finite(const float* data, int64_t n) {
  // A float is NaN or inf exactly when its exponent bits are all ones.
  int32_t bad = 0;
  for (int64_t i = 0; i < n; ++i) {
    int32_t bits;
    std::memcpy(&bits, data + i, sizeof(bits));
    bad |= (bits & 0x7f800000) == 0x7f800000;
  }
  return bad == 0;
}

std::vector<Peak> find_peaks(const MapView& heatmaps, double threshold, int64_t max_per_part,
                             const StopCallback& stop) {
  Ticker ticker(stop);
  std::vector<Peak> peaks;
  const int64_t h = heatmaps.height, w = heatmaps.width;
  std::vector<int64_t> cells;
  const int32_t tbits = threshold_bits(threshold);
  for (int64_t part = 0; part < heatmaps.planes; ++part) {
    const float* hm = heatmaps.plane(part);
    cells.clear();
    for (int64_t y = 0; y < h; ++y) {
      const float* row = hm + y * w;
      ticker.tick(w);
      if (!row_has_candidate(row, w, threshold, tbits)) continue;
      for (int64_t x = 0; x < w; ++x) {
        if (static_cast<double>(row[x]) >= threshold && is_local_max(hm, h, w, y, x))
          cells.push_back(y * w + x);
      }
    }
    if (static_cast<int64_t>(cells.size()) > max_per_part) {
      std::vector<size_t> order(cells.size());
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(),
                       [&](size_t l, size_t r) { return hm[cells[l]] > hm[cells[r]]; });
      order.resize(static_cast<size_t>(max_per_part));
      std::sort(order.begin(), order.end());
      std::vector<int64_t> kept;
      kept.reserve(order.size());
      for (size_t i : order) kept.push_back(cells[i]);
      cells.swap(kept);
    }
    for (int64_t cell : cells) {
      const int64_t y = cell / w, x = cell % w;
      const double v = hm[cell];
      const double dx = (x > 0 && x < w - 1) ? refine_offset(hm[cell - 1], v, hm[cell + 1]) : 0.0;
      const double dy = (y > 0 && y < h - 1) ? refine_offset(hm[cell - w], v, hm[cell + w]) : 0.0;
      peaks.push_back({static_cast<double>(x) + dx, static_cast<double>(y) + dy, v, part});
    }
  }
  return peaks;
}

GroupingOutput group(const MapView& heatmaps, const MapView& limb_maps, bool paf,
                     const std::vector<int64_t>& limbs, const GroupingParams& params,
                     double scale_x, double scale_y, double image_height,
                     const StopCallback& stop) {
  GroupingOutput out;
  const int64_t num_parts = heatmaps.planes;
  const int64_t h = heatmaps.height, w = heatmaps.width;
  out.peaks = find_peaks(heatmaps, params.peak_threshold, params.max_peaks_per_part, stop);
  std::vector<std::vector<int64_t>> ids_by_part(static_cast<size_t>(num_parts));
  for (size_t i = 0; i < out.peaks.size(); ++i)
    ids_by_part[static_cast<size_t>(out.peaks[i].part)].push_back(static_cast<int64_t>(i));

  const size_t num_limbs = limbs.size() / 2;
  check_limits(ids_by_part, limbs, params);
  Ticker ticker(stop);
  std::vector<std::vector<Connection>> connections(num_limbs);
  for (size_t k = 0; k < num_limbs; ++k) {
    const auto& ids_a = ids_by_part[static_cast<size_t>(limbs[2 * k])];
    const auto& ids_b = ids_by_part[static_cast<size_t>(limbs[2 * k + 1])];
    if (ids_a.empty() || ids_b.empty()) continue;
    const float* fx = paf ? limb_maps.plane(2 * k) : limb_maps.plane(k);
    const float* fy = paf ? limb_maps.plane(2 * k + 1) : nullptr;
    connections[k] = limb_connections(out.peaks, ids_a, ids_b, fx, fy, h, w, scale_x, scale_y,
                                      image_height, params, ticker);
  }
  std::vector<Person> people = assemble(out.peaks, limbs, connections, num_parts, params, ticker);
  if (params.limb_length_outlier > 0.0) {
    for (Person& q : people) remove_long_limbs(q, out.peaks, limbs, params, scale_x, scale_y);
  }
  for (Person& q : people) {
    if (q.count < params.min_parts) continue;
    if (q.total / static_cast<double>(q.count) < params.min_mean_score) continue;
    out.scores.push_back(params.score_mean ? q.total / static_cast<double>(q.count)
                                           : 1.0 - 1.0 / q.total);
    out.people.push_back(std::move(q));
  }
  return out;
}

}  // namespace simplepose
