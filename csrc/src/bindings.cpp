// pybind11 bindings of simplepose::group / find_peaks: numpy in, numpy out.
// Every argument is validated here (dtype, contiguity, shapes, finiteness, index ranges)
// so the algorithm in grouping.cpp never reads out of bounds; violations raise
// TypeError / ValueError naming the argument.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <cstring>
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

std::string num_str(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

// ---------------------------------------------------------------------- bounds
// Every number the algorithm sees is finite and bounded, so no arithmetic on it can
// overflow into a float-to-int cast, an allocation or a loop count beyond what the limits
// allow. simplepose/decode/params.py holds the same table (BOUNDS); a test compares them.
struct Bound {
  const char* name;
  double lo, hi;
};
constexpr Bound kFloatParams[] = {
    {"peak_threshold", -1e6, 1e6},     {"limb_sample_threshold", -1e6, 1e6},
    {"limb_pass_ratio", 0.0, 1.0},     {"limb_length_rate", 0.0, 1e6},
    {"merge_tolerance", 0.0, 1e6},     {"min_mean_score", -1e6, 1e6},
    {"priority_weights", -1e6, 1e6},                                       // each of the three
    {"limb_length_outlier", 0.0, 1e6}, {"limb_length_priors", 1e-3, 1e3},  // each
};
constexpr Bound kIntParams[] = {
    {"max_peaks_per_part", 1, 1e6},  {"limb_max_samples", 2, 1e4},       {"min_parts", 1, 1e6},
    {"max_candidate_pairs", 1, 1e7}, {"max_candidate_samples", 1, 1e11},
};
constexpr const char* kBoolParams[] = {"length_prior", "attach_from_end"};
constexpr Bound kCallBounds[] = {
    {"scale_x", 1e-6, 1e6}, {"scale_y", 1e-6, 1e6}, {"image_height", 1e-6, 1e9}};

const Bound& bound_of(const char* name) {
  for (const Bound& b : kFloatParams)
    if (std::strcmp(b.name, name) == 0) return b;
  for (const Bound& b : kIntParams)
    if (std::strcmp(b.name, name) == 0) return b;
  for (const Bound& b : kCallBounds)
    if (std::strcmp(b.name, name) == 0) return b;
  throw std::logic_error(std::string("no bound for ") + name);
}

double checked_double(const std::string& what, double v, const char* name) {
  const Bound& b = bound_of(name);
  if (!(v >= b.lo && v <= b.hi))  // NaN fails too
    throw py::value_error(what + " must be a finite number in [" + num_str(b.lo) + ", " +
                          num_str(b.hi) + "], got " + num_str(v));
  return v;
}

// A Python int or float (not bool, not str) as a double; TypeError naming `what` otherwise.
double as_double(py::handle h, const std::string& what) {
  if (PyBool_Check(h.ptr()) || !(PyFloat_Check(h.ptr()) || PyLong_Check(h.ptr())))
    throw py::type_error(what + " must be a number, got " +
                         std::string(py::str(py::type::of(h).attr("__name__"))));
  const double v = PyFloat_AsDouble(h.ptr());  // ints too (huge ones become inf)
  if (v == -1.0 && PyErr_Occurred()) {
    PyErr_Clear();
    return HUGE_VAL;
  }
  return v;
}

const py::handle param(const py::dict& d, const char* name) {
  if (!d.contains(name)) throw py::value_error(std::string("params is missing '") + name + "'");
  return d[name];
}

double float_param(const py::dict& d, const char* name) {
  const std::string what = std::string("params['") + name + "']";
  return checked_double(what, as_double(param(d, name), what), name);
}

int64_t int_param(const py::dict& d, const char* name) {
  const std::string what = std::string("params['") + name + "']";
  py::handle h = param(d, name);
  if (PyBool_Check(h.ptr()) || !PyLong_Check(h.ptr()))
    throw py::type_error(what + " must be an int, got " +
                         std::string(py::str(py::type::of(h).attr("__name__"))));
  // Range-checked as a double first, so the int64 conversion below cannot overflow.
  return static_cast<int64_t>(checked_double(what, as_double(h, what), name));
}

bool bool_param(const py::dict& d, const char* name) {
  py::handle h = param(d, name);
  if (!PyBool_Check(h.ptr()))
    throw py::type_error(std::string("params['") + name + "'] must be a bool, got " +
                         std::string(py::str(py::type::of(h).attr("__name__"))));
  return h.ptr() == Py_True;
}

// The dict of simplepose.decode.params.GroupingParams (to_dict()) -> the C++ struct. Every
// key is required and no other is accepted, so the defaults live only in params.py.
GroupingParams params_from_dict(const py::dict& d) {
  for (auto item : d) {
    const std::string key = py::str(item.first);
    bool known = key == "person_score";
    for (const Bound& b : kFloatParams) known = known || key == b.name;
    for (const Bound& b : kIntParams) known = known || key == b.name;
    for (const char* b : kBoolParams) known = known || key == b;
    if (!known) throw py::value_error("params has an unknown key '" + key + "'");
  }
  GroupingParams p;
  p.peak_threshold = float_param(d, "peak_threshold");
  p.limb_sample_threshold = float_param(d, "limb_sample_threshold");
  p.limb_pass_ratio = float_param(d, "limb_pass_ratio");
  p.limb_length_rate = float_param(d, "limb_length_rate");
  p.merge_tolerance = float_param(d, "merge_tolerance");
  p.min_mean_score = float_param(d, "min_mean_score");
  p.limb_length_outlier = float_param(d, "limb_length_outlier");
  p.max_peaks_per_part = int_param(d, "max_peaks_per_part");
  p.limb_max_samples = int_param(d, "limb_max_samples");
  p.min_parts = int_param(d, "min_parts");
  p.max_candidate_pairs = int_param(d, "max_candidate_pairs");
  p.max_candidate_samples = int_param(d, "max_candidate_samples");
  p.length_prior = bool_param(d, "length_prior");
  p.attach_from_end = bool_param(d, "attach_from_end");

  py::handle w = param(d, "priority_weights");
  const std::string what = "params['priority_weights']";
  if (!(PyTuple_Check(w.ptr()) || PyList_Check(w.ptr())) || py::len(w) != 3)
    throw py::value_error(what + " must be a tuple of 3 numbers, got " + std::string(py::repr(w)));
  for (int i = 0; i < 3; ++i) {
    const std::string item = what + "[" + std::to_string(i) + "]";
    p.priority_weights[i] =
        checked_double(item, as_double(w[py::int_(i)], item), "priority_weights");
  }

  py::handle priors = param(d, "limb_length_priors");
  const std::string pwhat = "params['limb_length_priors']";
  if (!(PyTuple_Check(priors.ptr()) || PyList_Check(priors.ptr())))
    throw py::value_error(pwhat + " must be a tuple of numbers (one per limb, or empty), got " +
                          std::string(py::repr(priors)));
  for (size_t i = 0; i < py::len(priors); ++i) {
    const std::string item = pwhat + "[" + std::to_string(i) + "]";
    p.limb_length_priors.push_back(
        checked_double(item, as_double(priors[py::int_(i)], item), "limb_length_priors"));
  }

  py::handle mode = param(d, "person_score");
  const std::string score =
      PyUnicode_Check(mode.ptr()) ? static_cast<std::string>(py::str(mode)) : std::string();
  if (score != "mean" && score != "one_minus_inv_total")
    throw py::value_error("params['person_score'] must be 'mean' or 'one_minus_inv_total', got " +
                          std::string(py::repr(mode)));
  p.score_mean = score == "mean";
  return p;
}

py::dict bounds_dict() {
  py::dict d;
  for (const Bound& b : kFloatParams) d[b.name] = py::make_tuple(b.lo, b.hi);
  for (const Bound& b : kIntParams)
    d[b.name] = py::make_tuple(static_cast<int64_t>(b.lo), static_cast<int64_t>(b.hi));
  for (const Bound& b : kCallBounds) d[b.name] = py::make_tuple(b.lo, b.hi);
  return d;
}

// Ctrl-C: the algorithm runs without the GIL and polls this (on the main thread only:
// Python delivers signals there, and other threads should not contend for the GIL).
simplepose::StopCallback stop_callback() {
  py::module_ threading = py::module_::import("threading");
  if (!threading.attr("current_thread")().is(threading.attr("main_thread")())) return {};
  return [] {
    py::gil_scoped_acquire gil;
    return PyErr_CheckSignals() != 0;  // leaves KeyboardInterrupt (or the handler's error) set
  };
}

// Runs fn without the GIL; re-raises the pending Python error if the run was interrupted.
template <typename Fn>
auto run_interruptible(Fn fn) -> decltype(fn(simplepose::StopCallback())) {
  simplepose::StopCallback stop = stop_callback();
  bool interrupted = false;
  decltype(fn(stop)) out;
  {
    py::gil_scoped_release release;  // arrays stay referenced by the caller's frame
    try {
      out = fn(stop);
    } catch (const simplepose::Interrupted&) {
      interrupted = true;
    }
  }
  if (interrupted) throw py::error_already_set();
  return out;
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
  checked_double("threshold", threshold, "peak_threshold");
  checked_double("max_peaks_per_part", static_cast<double>(max_peaks_per_part),
                 "max_peaks_per_part");
  simplepose::GroupingOutput out;
  out.peaks = run_interruptible([&](const simplepose::StopCallback& stop) {
    return simplepose::find_peaks(hm, threshold, max_peaks_per_part, stop);
  });
  return to_python(out, hm.planes)["peaks"].cast<py::array_t<double>>();
}

py::dict group_py(const py::array& heatmaps, const py::array& limb_maps, const py::array& limbs,
                  const py::dict& params, double scale_x, double scale_y, double image_height) {
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
        "got " +
        shape_str(limb_maps));
  }
  if (lm.height != hm.height || lm.width != hm.width)
    throw py::value_error("limb_maps spatial size " + shape_str(limb_maps) +
                          " does not match heatmaps " + shape_str(heatmaps));
  require_finite(lm.data, limb_maps.size(), "limb_maps");

  // scalars
  checked_double("scale_x", scale_x, "scale_x");
  checked_double("scale_y", scale_y, "scale_y");
  checked_double("image_height", image_height, "image_height");
  const GroupingParams p = params_from_dict(params);
  if (!p.limb_length_priors.empty() &&
      static_cast<int64_t>(p.limb_length_priors.size()) != num_limbs)
    throw py::value_error("params['limb_length_priors'] has " +
                          std::to_string(p.limb_length_priors.size()) + " values but limbs has " +
                          std::to_string(num_limbs) + " rows");

  simplepose::GroupingOutput out = run_interruptible([&](const simplepose::StopCallback& stop) {
    return simplepose::group(hm, lm, paf, limb_vec, p, scale_x, scale_y, image_height, stop);
  });
  return to_python(out, hm.planes);
}

}  // namespace

PYBIND11_MODULE(_grouping, m) {
  m.doc() = "simplepose C++ keypoint assignment (see simplepose.decode.grouping)";
  m.def("find_peaks", &find_peaks_py, py::arg("heatmaps"), py::arg("threshold"),
        py::arg("max_peaks_per_part"),
        "Peaks (N, 4) [x, y, score, part] in heatmap px of float32 (P, H, W) maps.");
  m.def("group", &group_py, py::arg("heatmaps"), py::arg("limb_maps"), py::arg("limbs"),
        py::arg("params"), py::kw_only(), py::arg("scale_x"), py::arg("scale_y"),
        py::arg("image_height"),
        "Group peaks into people; params is GroupingParams.to_dict(). Returns a dict of numpy "
        "arrays (heatmap px). Raises ValueError/TypeError naming a bad argument, ValueError "
        "when the peaks exceed max_candidate_pairs / max_candidate_samples, KeyboardInterrupt "
        "on Ctrl-C.");
  m.attr("BOUNDS") = bounds_dict();
}
