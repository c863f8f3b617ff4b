// When `octet bench` sends its requests: a Poisson process of a given rate, or all at once.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace octet::bench {

// Gaps between the arrivals of a Poisson process: exponentially distributed with mean 1 / rate seconds, drawn from
// a generator seeded with `seed` (the same seed gives the same gaps). An infinite rate gives gaps of 0.
class PoissonArrivals {
 public:
  PoissonArrivals(double rate, uint64_t seed);

  double NextGapSeconds();

 private:
  bool all_at_once_;
  std::mt19937_64 rng_;
  std::exponential_distribution<double> gap_;
};

// Send times of `count` requests in seconds from the start: the first at 0, each later one a Poisson gap after the
// one before (vLLM's benchmark_serving waits the same way between requests).
std::vector<double> ArrivalOffsets(int32_t count, double rate, uint64_t seed);

}  // namespace octet::bench
