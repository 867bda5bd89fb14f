// Bottom-up keypoint assignment (SimplePose / OpenPose style grouping), plain C++17.
//
// Coordinates: peaks and people are in heatmap px (cell i has its centre at x = i).
// Lengths used by thresholds are in original-image px (heatmap px times scale_x/scale_y).
// The algorithm mirrors simplepose/decode/reference_grouping.py operation for operation;
// the tests require both to return the same people.
#pragma once

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace simplepose {

// A read-only view of a C-contiguous float32 array of shape (planes, height, width).
struct MapView {
  const float* data = nullptr;
  int64_t planes = 0;
  int64_t height = 0;
  int64_t width = 0;
  const float* plane(int64_t p) const { return data + p * height * width; }
};

// Thresholds of the grouping. There are deliberately no default values here: the only
// defaults are those of simplepose/decode/params.py (GroupingParams), and the binding fills
// every field from that dataclass's dict, refusing missing or unknown keys.
struct GroupingParams {
  double peak_threshold = 0.0;
  int64_t max_peaks_per_part = 0;
  double limb_sample_threshold = 0.0;
  double limb_pass_ratio = 0.0;
  int64_t limb_max_samples = 0;
  bool length_prior = false;
  double limb_length_rate = 0.0;
  double merge_tolerance = 0.0;
  double priority_weights[3] = {0.0, 0.0, 0.0};
  int64_t min_parts = 0;
  double min_mean_score = 0.0;
  bool score_mean = false;  // person score total/count (true) or 1 - 1/total (false)
  bool attach_from_end = false;
  int64_t max_candidate_pairs = 0;    // all limbs together: memory bound
  int64_t max_candidate_samples = 0;  // pairs x limb_max_samples, all limbs: time bound
  // Limb length outliers (0: off): after assembly, a part whose limb is longer than
  // limb_length_outlier x the person's median limb, each limb's length divided by its
  // limb_length_priors entry (typical length relative to the other limbs; empty: all 1),
  // is removed with the parts hanging from it. Persons with fewer than 3 limbs are kept.
  double limb_length_outlier = 0.0;
  std::vector<double> limb_length_priors;
};

struct Peak {
  double x, y, score;
  int64_t part;
};

struct Person {
  std::vector<int64_t> ids;  // peak id per part, -1 if missing
  std::vector<double> link;  // limb score the part was attached with
  double total = 0.0;
  int64_t count = 0;
  double max_len = 0.0;
};

struct GroupingOutput {
  std::vector<Peak> peaks;
  std::vector<Person> people;
  std::vector<double> scores;
};

// The peaks would need more candidate pairs or limb samples than the params allow.
// The message names the count and the limit.
class LimitError : public std::length_error {
 public:
  using std::length_error::length_error;
};

// The caller's stop callback asked to abandon the run (e.g. Ctrl-C in Python).
class Interrupted : public std::runtime_error {
 public:
  Interrupted() : std::runtime_error("grouping interrupted") {}
};

// Polled every few milliseconds of work; returning true aborts the run with Interrupted.
// May be empty. Called from the thread that runs the grouping.
using StopCallback = std::function<bool()>;

// True when none of the n floats is NaN or inf (vectorisable bit test).
bool all_finite(const float* data, int64_t n);

// Peaks of every part map: 3x3 maximum with a raster-order tie-break, value >= threshold,
// at most max_per_part per part (highest first, kept in raster order), refined with a
// log-parabola over the 3 neighbouring cells per axis.
std::vector<Peak> find_peaks(const MapView& heatmaps, double threshold, int64_t max_per_part,
                             const StopCallback& stop = {});

// Full grouping. limb_maps holds L planes (Gaussian limb maps, paf == false) or 2L planes
// (x then y field of each limb, paf == true). limbs holds L (from, to) part pairs.
// Throws LimitError when the candidate pairs exceed params' limits (checked before any
// limb is scored) and Interrupted when `stop` returns true.
GroupingOutput group(const MapView& heatmaps, const MapView& limb_maps, bool paf,
                     const std::vector<int64_t>& limbs, const GroupingParams& params,
                     double scale_x, double scale_y, double image_height,
                     const StopCallback& stop = {});

}  // namespace simplepose
