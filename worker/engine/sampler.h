// Sampler: picks the next token of one sequence from its logits row (greedy, temperature, top-k, top-p) and reports
// raw log-probabilities.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "worker/engine/sampling_params.h"

namespace octet {

struct TokenLogprob {
  int32_t token_id;
  float logprob;
};

struct SampleResult {
  int32_t token_id;
  float logprob;                  // raw log-probability of token_id (see Sampler); NaN unless params.logprobs > 0
  std::vector<TokenLogprob> top;  // the params.logprobs most likely tokens, best first (ties: lower id first)
};

// Samples one token from a row of logits [vocab].
//
// - temperature == 0: greedy (argmax, ties go to the lowest id); the rng is not drawn from.
// - otherwise: logits / temperature, then top-k (if top_k > 0), then top-p over the probabilities renormalised after
//   top-k (the smallest most-likely set whose mass is >= top_p, never empty), then one draw from the rng, taken from
//   its raw 64-bit output so a seed gives the same tokens with every standard library.
// - Log-probabilities are those of the raw logits (log-softmax at temperature 1, before top-k/top-p), like vLLM's
//   default "raw logprobs"; computed only when params.logprobs > 0 (else logprob is NaN), since they cost a pass of
//   exp over the vocabulary.
// - Non-finite logits: NaN counts as -inf (never chosen). If some logits are +inf, those tokens share all the
//   probability. If no logit is above -inf, every token is equally likely.
//
// Holds scratch buffers reused across calls: keep one per thread in hot loops. Not thread-safe.
class Sampler {
 public:
  SampleResult Sample(std::span<const float> logits, const SamplingParams& params, std::mt19937_64& rng);

 private:
  // A token considered for top-k / top-p / top-logprobs.
  struct Candidate {
    float logit;
    int32_t token_id;
  };

  // Resolves non-finite logits (into clean_ when any are present); returns the row to use and sets *max_logit to
  // its largest value, which is always finite.
  std::span<const float> CleanLogits(std::span<const float> logits, float* max_logit);
  // Fills candidates_ with the n best tokens of x (higher logit first, then lower id), sorted best first.
  void SelectTop(std::span<const float> x, int32_t n, float max_logit);
  // Top-p over the whole vocabulary: zeroes weights_ (of x at temperature) outside the nucleus, the smallest set of
  // best tokens whose weights reach target, and returns the mass kept. min_logit: the smallest logit above -inf.
  double KeepNucleus(std::span<const float> x, float max_logit, float min_logit, float temperature, double target);
  // Draws a token at params.temperature (> 0) after top-k and top-p. Sets *raw_sum to sum(exp(x - max_logit)) when
  // it computed that sum on the way (temperature 1 over the whole vocabulary), else leaves it.
  int32_t Draw(std::span<const float> x, float max_logit, const SamplingParams& params, std::mt19937_64& rng,
               double* raw_sum);

  std::vector<float> clean_;           // [vocab] logits with non-finite values resolved; used only when needed
  std::vector<float> weights_;         // unnormalised probabilities at the request's temperature
  std::vector<Candidate> candidates_;  // selected tokens, best first
};

// Convenience for one-off calls; allocates its scratch on every call.
SampleResult Sample(std::span<const float> logits, const SamplingParams& params, std::mt19937_64& rng);

}  // namespace octet
