#include "client/bench/arrivals.h"

#include <cmath>

namespace octet::bench {

PoissonArrivals::PoissonArrivals(double rate, uint64_t seed)
    : all_at_once_(std::isinf(rate)), rng_(seed), gap_(all_at_once_ ? 1.0 : rate) {}

double PoissonArrivals::NextGapSeconds() { return all_at_once_ ? 0.0 : gap_(rng_); }

std::vector<double> ArrivalOffsets(int32_t count, double rate, uint64_t seed) {
  std::vector<double> offsets;
  if (count <= 0) return offsets;
  offsets.reserve(static_cast<size_t>(count));
  PoissonArrivals arrivals(rate, seed);
  double t = 0.0;
  offsets.push_back(t);
  for (int32_t i = 1; i < count; ++i) {
    t += arrivals.NextGapSeconds();
    offsets.push_back(t);
  }
  return offsets;
}

}  // namespace octet::bench
