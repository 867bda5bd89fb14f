// Drives simplepose::group directly (no binding, so no bounds) with extreme scales and
// thresholds. Built with -fsanitize=undefined,float-cast-overflow by
// tests/test_grouping_limits.py: any undefined behaviour (e.g. an infinite limb length
// reaching a float-to-int cast) aborts the run. Prints one line per case; exit 0 = clean.
#include <cmath>
#include <cstdio>
#include <limits>
#include <vector>

#include "simplepose/grouping.hpp"

using simplepose::GroupingParams;
using simplepose::MapView;

int main() {
  const int64_t h = 16, w = 16;
  // A chain of five parts (four limbs), one peak each, uneven spacing so that the limb
  // length outlier rule has work; Gaussian limb maps of ones, PAFs of 0.5.
  const int64_t parts = 5, num_limbs = 4;
  const int64_t ys[parts] = {1, 3, 5, 7, 14}, xs[parts] = {1, 3, 5, 7, 14};
  std::vector<float> heat(parts * h * w, 0.0f), limb(num_limbs * h * w, 1.0f);
  std::vector<float> paf(2 * num_limbs * h * w, 0.5f);
  for (int64_t i = 0; i < parts; ++i) heat[i * h * w + ys[i] * w + xs[i]] = 1.0f;
  const std::vector<int64_t> limbs = {0, 1, 1, 2, 2, 3, 3, 4};
  const MapView hm{heat.data(), parts, h, w};
  const MapView gauss{limb.data(), num_limbs, h, w};
  const MapView field{paf.data(), 2 * num_limbs, h, w};

  GroupingParams base;
  base.peak_threshold = 0.1;
  base.max_peaks_per_part = 64;
  base.limb_sample_threshold = 0.1;
  base.limb_pass_ratio = 0.8;
  base.limb_max_samples = 20;
  base.length_prior = true;
  base.limb_length_rate = 16.0;
  base.merge_tolerance = 0.7;
  base.priority_weights[0] = 0.5;
  base.priority_weights[1] = base.priority_weights[2] = 0.25;
  base.min_parts = 1;
  base.min_mean_score = 0.0;
  base.score_mean = true;
  base.attach_from_end = true;
  base.max_candidate_pairs = 1000;
  base.max_candidate_samples = 100000000;
  base.limb_length_outlier = 2.0;
  base.limb_length_priors = {1.0, 0.5, 2.0, 1.0};

  const double inf = std::numeric_limits<double>::infinity();
  const double scales[] = {1.0, 1e300, -1e300, inf, 1e-300, 1e18};
  const double thresholds[] = {0.1, 1e300, -1e300, 1e39, -1e39};
  int cases = 0;
  for (int paf_mode = 0; paf_mode < 2; ++paf_mode) {
    const MapView& lm = paf_mode ? field : gauss;
    for (double s : scales) {
      for (double t : thresholds) {
        GroupingParams p = base;
        p.peak_threshold = t;
        p.limb_sample_threshold = t;
        p.limb_max_samples = 10000;
        const auto out = simplepose::group(hm, lm, paf_mode == 1, limbs, p, s, s, 1e300);
        const long parts_kept = out.people.empty() ? 0L : static_cast<long>(out.people[0].count);
        std::printf("paf=%d scale=%g threshold=%g peaks=%zu people=%zu parts=%ld\n", paf_mode, s, t,
                    out.peaks.size(), out.people.size(), parts_kept);
        ++cases;
      }
    }
  }
  std::printf("%d cases clean\n", cases);
  return 0;
}
