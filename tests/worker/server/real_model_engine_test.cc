// The serving engine on real checkpoints (CPU backend), as the worker builds it: greedy output does not depend on
// what else is in the batch (the bundled Qwen3.5 model, hybrid), and prefix caching changes no token (a Qwen3
// checkpoint made by transformers).
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "worker/server/worker_runtime.h"

namespace octet {
namespace {

// Collects a request's tokens; Wait returns them once the request finished.
class TokenSink final : public OutputSink {
 public:
  void Deliver(GenerationOutput output) override {
    std::lock_guard<std::mutex> lock(mu_);
    tokens_.insert(tokens_.end(), output.token_ids.begin(), output.token_ids.end());
    if (output.finish_reason != FinishReason::kNone) {
      finish_ = output.finish_reason;
      cv_.notify_all();
    }
  }
  std::vector<int32_t> Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return finish_ != FinishReason::kNone; });
    EXPECT_EQ(finish_, FinishReason::kLength);
    return tokens_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<int32_t> tokens_;
  FinishReason finish_ = FinishReason::kNone;
};

std::unique_ptr<WorkerRuntime> StartWorker(const std::string& model_dir, bool prefix_caching) {
  WorkerOptions options;
  options.model_dir = model_dir;
  options.served_model_name = "test";
  options.device = "cpu";
  options.max_model_len = 512;
  options.enable_prefix_caching = prefix_caching;
  options.scheduler = {.max_num_seqs = 16, .max_num_batched_tokens = 2048};
  absl::StatusOr<std::unique_ptr<WorkerRuntime>> runtime = WorkerRuntime::Create(options);
  EXPECT_TRUE(runtime.ok()) << runtime.status();
  return runtime.ok() ? *std::move(runtime) : nullptr;
}

std::shared_ptr<TokenSink> SubmitGreedy(WorkerRuntime& worker, const std::string& prompt, int32_t max_tokens) {
  auto sink = std::make_shared<TokenSink>();
  EngineRequest request;
  request.request_id = prompt.substr(0, 16);
  request.prompt_token_ids = worker.tokenizer().Encode(prompt);
  request.sampling.temperature = 0.0f;
  request.sampling.max_tokens = max_tokens;
  request.sampling.ignore_eos = true;
  request.sink = sink;
  worker.engine().Submit(std::move(request));
  return sink;
}

std::vector<std::string> CodePrompts() {
  std::vector<std::string> prompts;
  const char* names[] = {"parse", "merge",  "split", "count", "reverse", "flatten", "unique", "chunk",
                         "zip",   "rotate", "clamp", "mean",  "median",  "window",  "group",  "sort"};
  for (int i = 0; i < 16; ++i) {
    prompts.push_back(std::string("def ") + names[i] + "(items" + (i % 3 == 0 ? ", key=None" : "") + "):\n    \"\"\"" +
                      std::string(i % 5, ' ') + "Return the " + names[i] + " of items.\"\"\"\n");
  }
  return prompts;
}

TEST(RealModelEngineTest, GreedyOutputAloneEqualsItsOutputInABatchOfSixteen) {
  std::unique_ptr<WorkerRuntime> worker = StartWorker("models/qwen3_5-code-small", /*prefix_caching=*/false);
  ASSERT_NE(worker, nullptr);
  const std::vector<std::string> prompts = CodePrompts();
  constexpr int32_t kTokens = 24;
  std::vector<std::vector<int32_t>> alone;
  for (const std::string& p : prompts) alone.push_back(SubmitGreedy(*worker, p, kTokens)->Wait());
  // All sixteen at once: prefills of different lengths in one step, then decodes of sixteen rows.
  std::vector<std::shared_ptr<TokenSink>> sinks;
  for (const std::string& p : prompts) sinks.push_back(SubmitGreedy(*worker, p, kTokens));
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_EQ(sinks[i]->Wait(), alone[i]) << "prompt " << i << ": " << prompts[i];
  }
}

TEST(RealModelEngineTest, PrefixCachingChangesNoTokenAndIsHit) {
  const std::string model = "tests/fixtures/hf/qwen3-tiny-gqa-f32";
  std::unique_ptr<WorkerRuntime> cold = StartWorker(model, /*prefix_caching=*/false);
  std::unique_ptr<WorkerRuntime> warm = StartWorker(model, /*prefix_caching=*/true);
  ASSERT_NE(cold, nullptr);
  ASSERT_NE(warm, nullptr);
  const std::string system =
      "You are a careful assistant. Answer in one short sentence and do not repeat the question. ";
  const std::vector<std::string> questions = {"What is a block?", "Why cache a prefix?", "What is FP8?",
                                              "How long is a context?"};
  constexpr int32_t kTokens = 12;
  for (int round = 0; round < 2; ++round) {  // the second round repeats every prompt whole
    for (const std::string& q : questions) {
      const std::vector<int32_t> expected = SubmitGreedy(*cold, system + q, kTokens)->Wait();
      EXPECT_EQ(SubmitGreedy(*warm, system + q, kTokens)->Wait(), expected) << "round " << round << ": " << q;
    }
  }
  const EngineStats& stats = warm->engine().stats();
  EXPECT_GT(stats.prefix_hit_tokens.load(), 0);
  EXPECT_EQ(cold->engine().stats().prefix_hit_tokens.load(), 0);
  const int64_t block = 16;
  const int64_t system_blocks = static_cast<int64_t>(warm->tokenizer().Encode(system).size()) / block;
  // At least the system prompt's full blocks for every request after the first.
  EXPECT_GE(stats.prefix_hit_tokens.load(), (2 * static_cast<int64_t>(questions.size()) - 1) * system_blocks * block);
}

}  // namespace
}  // namespace octet
