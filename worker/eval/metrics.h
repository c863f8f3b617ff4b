// Metrics of a setting's next-token distributions against the baseline's: negative log-likelihood (perplexity),
// KL(P_baseline || P_setting) and top-1 agreement, accumulated position by position from fp32 logits.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/types/span.h"

namespace octet::eval {

// One setting's totals over every scored position.
struct Metrics {
  int64_t num_positions = 0;  // scored positions (each predicts the next token of the text)
  double nll_sum = 0;         // sum of -log P(next token), nats
  double kl_sum = 0;          // sum of KL(P_baseline || P), nats
  int64_t top1_matches = 0;   // positions whose argmax equals the baseline's

  double MeanNll() const;
  double Perplexity() const;  // exp(mean NLL)
  double MeanKl() const;
  double Top1Agreement() const;  // fraction in [0, 1]
  void Merge(const Metrics& other);
};

// log(sum(exp(row))), in double, stable for any finite row.
double LogSumExp(absl::Span<const float> row);
// Index of the largest logit (the first one on ties).
int32_t Argmax(absl::Span<const float> row);
// KL(softmax(p_logits) || softmax(q_logits)) in nats; rows of the same length.
double KlDivergence(absl::Span<const float> p_logits, absl::Span<const float> q_logits);

// Adds positions [0, targets.size()) of one window: baseline and logits are [>= targets.size(), vocab] row-major,
// row i holding the distribution that predicts targets[i]. Passing the baseline as `logits` scores the baseline
// itself (KL 0, agreement 1).
void AccumulateWindow(absl::Span<const float> baseline, absl::Span<const float> logits,
                      absl::Span<const int32_t> targets, int32_t vocab, Metrics& metrics);

}  // namespace octet::eval
