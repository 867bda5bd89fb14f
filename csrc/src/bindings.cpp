// pybind11 bindings of simplepose::group / find_peaks: numpy in, numpy out.
// Every argument is validated here (dtype, contiguity, shapes, finiteness, index ranges)
// so the algorithm in grouping.cpp never reads out of bounds; violations raise
// TypeError / ValueError naming the argument.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <sstream>
#include <string>

#include "simplepose/grouping.hpp"

namespace py = pybind11;
using simplepose::GroupingParams;
using simplepose::MapView;

namespace {

std::string shape_str(const py::array& a) {
  std::ostringstream s;
  s << "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s << (i ? ", " : "") << a.shape(i);
  s << (a.ndim() == 1 ? ",)" : ")");
  return s.str();
}

void require_float32_c(const py::array& a, const char* name) {
  if (!a.dtype().is(py::dtype::of<float>()))
    throw py::type_error(std::string(name) + " must be float32, got dtype " +
                         std::string(py::str(a.dtype())));
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(std::string(name) + " must be C-contiguous (use np.ascontiguousarray)");
}

void require_finite(const float* p, py::ssize_t n, const char* name) {
  if (simplepose::all_finite(p, n)) return;  // fast path; locate the culprit only on error
  for (py::ssize_t i = 0; i < n; ++i) {
    if (!std::isfinite(p[i]))
      throw py::value_error(std::string(name) + " contains NaN or inf (first at flat index " +
                            std::to_string(i) + ")");
  }
}

void require_finite_param(double v, const char* name) {
  if (!std::isfinite(v)) throw py::value_error(std::string(name) + " must be finite");
}

MapView view_heatmaps(const py::array& heatmaps) {
  require_float32_c(heatmaps, "heatmaps");
  if (heatmaps.ndim() != 3)
    throw py::value_error("heatmaps must have shape (parts, height, width), got " +
                          shape_str(heatmaps));
  MapView v{static_cast<const float*>(heatmaps.data()), heatmaps.shape(0), heatmaps.shape(1),
            heatmaps.shape(2)};
  if (v.planes < 1 || v.height < 1 || v.width < 1)
    throw py::value_error("heatmaps must be non-empty, got shape " + shape_str(heatmaps));
  require_finite(v.data, heatmaps.size(), "heatmaps");
  return v;
}

py::dict to_python(const simplepose::GroupingOutput& out, int64_t num_parts) {
  const py::ssize_t n = static_cast<py::ssize_t>(out.peaks.size());
  const py::ssize_t m = static_cast<py::ssize_t>(out.people.size());
  const py::ssize_t p = static_cast<py::ssize_t>(num_parts);
  py::array_t<double> peaks({n, static_cast<py::ssize_t>(4)});
  auto pk = peaks.mutable_unchecked<2>();
  for (py::ssize_t i = 0; i < n; ++i) {
    pk(i, 0) = out.peaks[i].x;
    pk(i, 1) = out.peaks[i].y;
    pk(i, 2) = out.peaks[i].score;
    pk(i, 3) = static_cast<double>(out.peaks[i].part);
  }
  py::array_t<double> people({m, p, static_cast<py::ssize_t>(3)});
  py::array_t<int64_t> ids({m, p});
  py::array_t<double> scores(m), totals(m);
  py::array_t<int64_t> counts(m);
  auto pe = people.mutable_unchecked<3>();
  auto id = ids.mutable_unchecked<2>();
  auto sc = scores.mutable_unchecked<1>();
  auto to = totals.mutable_unchecked<1>();
  auto co = counts.mutable_unchecked<1>();
  for (py::ssize_t j = 0; j < m; ++j) {
    const auto& q = out.people[j];
    for (py::ssize_t k = 0; k < p; ++k) {
      const int64_t pid = q.ids[k];
      id(j, k) = pid;
      if (pid >= 0) {
        pe(j, k, 0) = out.peaks[pid].x;
        pe(j, k, 1) = out.peaks[pid].y;
        pe(j, k, 2) = out.peaks[pid].score;
      } else {
        pe(j, k, 0) = pe(j, k, 1) = pe(j, k, 2) = 0.0;
      }
    }
    sc(j) = out.scores[j];
    to(j) = q.total;
    co(j) = q.count;
  }
  py::dict d;
  d["peaks"] = peaks;
  d["people"] = people;
  d["part_ids"] = ids;
  d["scores"] = scores;
  d["totals"] = totals;
  d["counts"] = counts;
  return d;
}

py::array_t<double> find_peaks_py(const py::array& heatmaps, double threshold,
                                  int64_t max_peaks_per_part) {
  MapView hm = view_heatmaps(heatmaps);
  require_finite_param(threshold, "threshold");
  if (max_peaks_per_part < 1) throw py::value_error("max_peaks_per_part must be >= 1");
  std::vector<simplepose::Peak> peaks;
  {
    py::gil_scoped_release release;
    peaks = simplepose::find_peaks(hm, threshold, max_peaks_per_part);
  }
  simplepose::GroupingOutput out;
  out.peaks = std::move(peaks);
  return to_python(out, hm.planes)["peaks"].cast<py::array_t<double>>();
}

py::dict group_py(const py::array& heatmaps, const py::array& limb_maps, const py::array& limbs,
                  double scale_x, double scale_y, double image_height, double peak_threshold,
                  int64_t max_peaks_per_part, double limb_sample_threshold, double limb_pass_ratio,
                  int64_t limb_max_samples, bool length_prior, double limb_length_rate,
                  double merge_tolerance, py::tuple priority_weights, int64_t min_parts,
                  double min_mean_score, const std::string& person_score, bool attach_from_end) {
  MapView hm = view_heatmaps(heatmaps);

  // limbs: (L, 2) int32/int64 part indices
  if (!(limbs.dtype().is(py::dtype::of<int32_t>()) || limbs.dtype().is(py::dtype::of<int64_t>())))
    throw py::type_error("limbs must be int32 or int64, got dtype " +
                         std::string(py::str(limbs.dtype())));
  if (limbs.ndim() != 2 || limbs.shape(1) != 2)
    throw py::value_error("limbs must have shape (num_limbs, 2), got " + shape_str(limbs));
  const int64_t num_limbs = limbs.shape(0);
  std::vector<int64_t> limb_vec(static_cast<size_t>(2 * num_limbs));
  {
    py::array_t<int64_t, py::array::c_style | py::array::forcecast> l64(limbs);
    auto r = l64.unchecked<2>();
    for (int64_t k = 0; k < num_limbs; ++k) {
      for (int e = 0; e < 2; ++e) {
        const int64_t part = r(k, e);
        if (part < 0 || part >= hm.planes)
          throw py::value_error("limbs[" + std::to_string(k) + "] refers to part " +
                                std::to_string(part) + ", outside [0, " +
                                std::to_string(hm.planes) + ")");
        limb_vec[static_cast<size_t>(2 * k + e)] = part;
      }
    }
  }

  // limb maps: (L, H, W) Gaussian, or (L, 2, H, W) PAF
  require_float32_c(limb_maps, "limb_maps");
  bool paf;
  MapView lm;
  if (limb_maps.ndim() == 3) {
    paf = false;
    lm = {static_cast<const float*>(limb_maps.data()), limb_maps.shape(0), limb_maps.shape(1),
          limb_maps.shape(2)};
    if (lm.planes != num_limbs)
      throw py::value_error("limb_maps has " + std::to_string(lm.planes) + " maps but limbs has " +
                            std::to_string(num_limbs) + " rows");
  } else if (limb_maps.ndim() == 4) {
    paf = true;
    if (limb_maps.shape(1) != 2)
      throw py::value_error("PAF limb_maps must have shape (num_limbs, 2, height, width), got " +
                            shape_str(limb_maps));
    lm = {static_cast<const float*>(limb_maps.data()), 2 * limb_maps.shape(0), limb_maps.shape(2),
          limb_maps.shape(3)};
    if (limb_maps.shape(0) != num_limbs)
      throw py::value_error("limb_maps has " + std::to_string(limb_maps.shape(0)) +
                            " PAFs but limbs has " + std::to_string(num_limbs) + " rows");
  } else {
    throw py::value_error(
        "limb_maps must have shape (num_limbs, height, width) or (num_limbs, 2, height, width), "
        "got " + shape_str(limb_maps));
  }
  if (lm.height != hm.height || lm.width != hm.width)
    throw py::value_error("limb_maps spatial size " + shape_str(limb_maps) +
                          " does not match heatmaps " + shape_str(heatmaps));
  require_finite(lm.data, limb_maps.size(), "limb_maps");

  // scalars
  require_finite_param(scale_x, "scale_x");
  require_finite_param(scale_y, "scale_y");
  require_finite_param(image_height, "image_height");
  if (scale_x <= 0 || scale_y <= 0) throw py::value_error("scale_x and scale_y must be > 0");
  if (image_height <= 0) throw py::value_error("image_height must be > 0");
  GroupingParams p;
  const double finite_params[] = {peak_threshold, limb_sample_threshold, limb_pass_ratio,
                                  limb_length_rate, merge_tolerance, min_mean_score};
  for (double v : finite_params) require_finite_param(v, "grouping parameters");
  if (max_peaks_per_part < 1) throw py::value_error("max_peaks_per_part must be >= 1");
  if (limb_max_samples < 2 || limb_max_samples > 10000)
    throw py::value_error("limb_max_samples must be in [2, 10000]");
  if (min_parts < 1) throw py::value_error("min_parts must be >= 1");
  if (priority_weights.size() != 3)
    throw py::value_error("priority_weights must have 3 elements");
  for (int i = 0; i < 3; ++i) {
    p.priority_weights[i] = priority_weights[i].cast<double>();
    require_finite_param(p.priority_weights[i], "priority_weights");
  }
  if (person_score != "mean" && person_score != "one_minus_inv_total")
    throw py::value_error("person_score must be 'mean' or 'one_minus_inv_total', got '" +
                          person_score + "'");
  p.peak_threshold = peak_threshold;
  p.max_peaks_per_part = max_peaks_per_part;
  p.limb_sample_threshold = limb_sample_threshold;
  p.limb_pass_ratio = limb_pass_ratio;
  p.limb_max_samples = limb_max_samples;
  p.length_prior = length_prior;
  p.limb_length_rate = limb_length_rate;
  p.merge_tolerance = merge_tolerance;
  p.min_parts = min_parts;
  p.min_mean_score = min_mean_score;
  p.score_mean = person_score == "mean";
  p.attach_from_end = attach_from_end;

  simplepose::GroupingOutput out;
  {
    py::gil_scoped_release release;  // arrays stay referenced by the caller's frame
    out = simplepose::group(hm, lm, paf, limb_vec, p, scale_x, scale_y, image_height);
  }
  return to_python(out, hm.planes);
}

}  // namespace

PYBIND11_MODULE(_grouping, m) {
  m.doc() = "simplepose C++ keypoint assignment (see simplepose.decode.grouping)";
  m.def("find_peaks", &find_peaks_py, py::arg("heatmaps"), py::arg("threshold"),
        py::arg("max_peaks_per_part"),
        "Peaks (N, 4) [x, y, score, part] in heatmap px of float32 (P, H, W) maps.");
  m.def("group", &group_py, py::arg("heatmaps"), py::arg("limb_maps"), py::arg("limbs"),
        py::kw_only(), py::arg("scale_x"), py::arg("scale_y"), py::arg("image_height"),
        py::arg("peak_threshold"), py::arg("max_peaks_per_part"),
        py::arg("limb_sample_threshold"), py::arg("limb_pass_ratio"),
        py::arg("limb_max_samples"), py::arg("length_prior"), py::arg("limb_length_rate"),
        py::arg("merge_tolerance"), py::arg("priority_weights"), py::arg("min_parts"),
        py::arg("min_mean_score"), py::arg("person_score"), py::arg("attach_from_end"),
        "Group peaks into people; returns a dict of numpy arrays (heatmap px).");
}
