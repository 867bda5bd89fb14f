// Bottom-up keypoint assignment (SimplePose / OpenPose style grouping), plain C++17.
//
// Coordinates: peaks and people are in heatmap px (cell i has its centre at x = i).
// Lengths used by thresholds are in original-image px (heatmap px times scale_x/scale_y).
// The algorithm mirrors simplepose/decode/reference_grouping.py operation for operation;
// the tests require both to return the same people.
#pragma once

#include <cstdint>
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

struct GroupingParams {
  double peak_threshold = 0.1;
  int64_t max_peaks_per_part = 64;
  double limb_sample_threshold = 0.1;
  double limb_pass_ratio = 0.8;
  int64_t limb_max_samples = 20;
  bool length_prior = true;
  double limb_length_rate = 16.0;
  double merge_tolerance = 0.7;
  double priority_weights[3] = {0.5, 0.25, 0.25};
  int64_t min_parts = 2;
  double min_mean_score = 0.45;
  bool score_mean = true;  // person score total/count (true) or 1 - 1/total (false)
  bool attach_from_end = true;
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

// True when none of the n floats is NaN or inf (vectorisable bit test).
bool all_finite(const float* data, int64_t n);

// Peaks of every part map: 3x3 maximum with a raster-order tie-break, value >= threshold,
// at most max_per_part per part (highest first, kept in raster order), refined with a
// log-parabola over the 3 neighbouring cells per axis.
std::vector<Peak> find_peaks(const MapView& heatmaps, double threshold, int64_t max_per_part);

// Full grouping. limb_maps holds L planes (Gaussian limb maps, paf == false) or 2L planes
// (x then y field of each limb, paf == true). limbs holds L (from, to) part pairs.
GroupingOutput group(const MapView& heatmaps, const MapView& limb_maps, bool paf,
                     const std::vector<int64_t>& limbs, const GroupingParams& params,
                     double scale_x, double scale_y, double image_height);

}  // namespace simplepose
