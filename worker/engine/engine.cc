#include "worker/engine/engine.h"

#include <algorithm>
#include <chrono>
#include <limits>
#include <span>

#include "absl/strings/str_cat.h"
#include "base/log.h"

namespace octet {

Engine::Engine(const EngineConfig& config, ModelRunner& runner, const Tokenizer& tokenizer)
    : config_(config),
      runner_(runner),
      tokenizer_(tokenizer),
      eos_token_ids_(config.eos_token_ids.begin(), config.eos_token_ids.end()),
      block_manager_(config.num_kv_blocks, config.block_size, config.enable_prefix_caching),
      state_slots_(config.num_state_slots > 0 ? std::make_unique<StateSlotPool>(config.num_state_slots) : nullptr),
      scheduler_(config.scheduler, block_manager_, state_slots_.get()) {
  OCTET_CHECK(!(config.enable_prefix_caching && config.num_state_slots > 0))
      << "prefix caching needs an attention-only model: recurrent state is not kept per block";
  PublishStats();
}

Engine::~Engine() { Stop(); }

void Engine::Start() {
  OCTET_CHECK(!thread_.joinable()) << "engine started twice";
  thread_ = std::thread([this] { Loop(); });
}

void Engine::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

int64_t Engine::Submit(EngineRequest request) {
  int64_t id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    id = next_seq_id_++;
    if (stopping_) {  // the loop is gone: answer now rather than leave the request unheard
      if (request.sink) {
        request.sink->Deliver(GenerationOutput{.finish_reason = FinishReason::kCancelled,
                                               .prompt_tokens = static_cast<int32_t>(request.prompt_token_ids.size())});
      }
      return id;
    }
    const int64_t queued = static_cast<int64_t>(inbox_.size()) + stats_.num_waiting.load(std::memory_order_relaxed);
    if (config_.max_queued_requests > 0 && queued >= config_.max_queued_requests) {
      if (observer_) observer_->OnRejected(absl::StatusCode::kResourceExhausted);
      if (request.sink) {
        GenerationOutput out{.finish_reason = FinishReason::kError,
                             .prompt_tokens = static_cast<int32_t>(request.prompt_token_ids.size())};
        out.status = absl::ResourceExhaustedError(absl::StrCat("the worker's queue is full (", queued,
                                                               " requests waiting; --max-queued-requests ",
                                                               config_.max_queued_requests, ")"));
        request.sink->Deliver(std::move(out));
      }
      return id;
    }
    auto seq = std::make_unique<Sequence>(id, std::move(request.request_id), std::move(request.prompt_token_ids),
                                          std::move(request.sampling));
    seq->sink = std::move(request.sink);
    seq->set_priority(request.priority);
    seq->set_deadline(request.deadline);
    inbox_.push_back(std::move(seq));
    stats_.num_unfinished.fetch_add(1, std::memory_order_relaxed);
  }
  cv_.notify_one();
  return id;
}

void Engine::Cancel(int64_t seq_id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    cancels_.push_back(seq_id);
  }
  cv_.notify_one();
}

void Engine::Loop() {
  OCTET_LOG(INFO, "engine") << "engine loop started: " << config_.num_kv_blocks << " KV blocks of "
                            << config_.block_size << " tokens, max " << config_.scheduler.max_num_seqs << " sequences, "
                            << config_.scheduler.max_num_batched_tokens << " tokens per step";
  while (TakeInbox()) Step();
  // Stopping: whatever is still queued or running ends as cancelled.
  std::vector<int64_t> ids;
  for (auto& [id, request] : requests_) ids.push_back(id);
  for (int64_t id : ids) FinishRequest(id, GenerationOutput{.finish_reason = FinishReason::kCancelled});
  OCTET_LOG(INFO, "engine") << "engine loop stopped";
}

bool Engine::TakeInbox() {
  std::vector<std::unique_ptr<Sequence>> inbox;
  std::vector<int64_t> cancels;
  {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return stopping_ || !inbox_.empty() || !cancels_.empty() || !scheduler_.empty(); });
    if (stopping_) {
      for (auto& seq : inbox_) requests_.emplace(seq->seq_id(), Request{std::move(seq), TextStream(tokenizer_, {})});
      inbox_.clear();
      return false;
    }
    inbox.swap(inbox_);
    cancels.swap(cancels_);
  }
  for (auto& seq : inbox) {
    const int64_t id = seq->seq_id();
    Sequence* raw = seq.get();
    requests_.emplace(id, Request{std::move(seq), TextStream(tokenizer_, raw->sampling().stop)});
    scheduler_.Add(raw);
    if (raw->deadline() != std::chrono::steady_clock::time_point::max()) ++num_with_deadline_;
  }
  for (int64_t id : cancels) {
    if (requests_.contains(id)) FinishRequest(id, GenerationOutput{.finish_reason = FinishReason::kCancelled});
  }
  return true;
}

void Engine::ExpireDeadlines() {
  if (num_with_deadline_ == 0) return;
  const auto now = std::chrono::steady_clock::now();
  std::vector<int64_t> expired;
  for (const auto& [id, request] : requests_) {
    if (request.seq->deadline() <= now) expired.push_back(id);
  }
  for (int64_t id : expired) {
    GenerationOutput out{.finish_reason = FinishReason::kError};
    out.status = absl::DeadlineExceededError("the request's deadline passed before it finished");
    FinishRequest(id, std::move(out));
  }
}

void Engine::Step() {
  const auto step_start = std::chrono::steady_clock::now();
  ExpireDeadlines();
  const std::vector<ScheduledSequence> batch = scheduler_.Schedule();
  if (batch.empty()) {
    PublishStats();
    return;
  }
  const auto start = std::chrono::steady_clock::now();
  int32_t prefill_tokens = 0, decode_tokens = 0;
  std::vector<Request*> requests;  // batch order; one lookup per sequence a step
  requests.reserve(batch.size());
  for (const ScheduledSequence& s : batch) {
    const bool decode = s.seq->num_cached_tokens() >= s.seq->num_prompt_tokens();
    (decode ? decode_tokens : prefill_tokens) += s.num_new_tokens;
    Request& request = requests_.at(s.seq->seq_id());
    requests.push_back(&request);
    if (!request.scheduled) {
      request.scheduled = true;
      if (observer_) observer_->OnScheduled(std::chrono::duration<double>(start - s.seq->arrival()).count());
    }
  }
  const auto run_start = std::chrono::steady_clock::now();
  const StepOutput step = runner_.Run(batch);
  const auto now = std::chrono::steady_clock::now();
  if (observer_) {
    observer_->OnStep(static_cast<int32_t>(batch.size()), prefill_tokens, decode_tokens,
                      std::chrono::duration<double>(now - start).count());
  }
  const size_t vocab = static_cast<size_t>(runner_.vocab_size());
  size_t row = 0;
  for (size_t i = 0; i < batch.size(); ++i) {
    const ScheduledSequence& s = batch[i];
    Sequence& seq = *s.seq;
    seq.set_num_cached_tokens(seq.num_cached_tokens() + s.num_new_tokens);
    block_manager_.CacheFullBlocks(seq);
    if (!s.sample) continue;
    Request& request = *requests[i];  // still there: only ProcessToken below erases, and only its own request
    if (observer_) {
      if (seq.num_completion_tokens() == 0) {
        observer_->OnFirstToken(std::chrono::duration<double>(now - seq.arrival()).count());
      } else {
        observer_->OnNextToken(std::chrono::duration<double>(now - request.last_token).count());
      }
      request.last_token = now;
    }
    SampleResult sample;
    if (!step.tokens.empty()) {  // sampled on the device
      sample = SampleResult{step.tokens[row], std::numeric_limits<float>::quiet_NaN(), {}};
    } else {
      std::span<const float> row_logits(step.logits.data() + row * vocab, vocab);
      sample = sampler_.Sample(row_logits, seq.sampling(), seq.rng());
    }
    ++row;
    seq.AppendToken(sample.token_id);
    ProcessToken(request, std::move(sample));
  }
  stats_.num_steps.fetch_add(1, std::memory_order_relaxed);
  PublishStats();
  if (observer_) {
    const auto end = std::chrono::steady_clock::now();
    observer_->OnHostTime(std::chrono::duration<double>((run_start - step_start) + (end - now)).count());
  }
}

bool Engine::ProcessToken(Request& request, SampleResult sample) {
  Sequence& seq = *request.seq;
  const SamplingParams& params = seq.sampling();
  const int32_t token = sample.token_id;
  GenerationOutput out;
  out.token_ids.push_back(token);
  if (params.logprobs > 0) out.logprobs.push_back(std::move(sample));

  FinishReason finish = FinishReason::kNone;
  const bool stop_token =
      (!params.ignore_eos && eos_token_ids_.contains(token)) ||
      std::find(params.stop_token_ids.begin(), params.stop_token_ids.end(), token) != params.stop_token_ids.end();
  if (stop_token) {
    finish = FinishReason::kStop;  // the stop token's own text is not part of the completion
  } else if (request.text.Push(token)) {
    finish = FinishReason::kStop;
  } else if (seq.num_completion_tokens() >= params.max_tokens || seq.num_tokens() >= config_.max_model_len) {
    finish = FinishReason::kLength;
  }

  out.text = request.text.Take(/*final=*/finish != FinishReason::kNone);
  if (finish == FinishReason::kNone) {
    seq.sink->Deliver(std::move(out));
    return false;
  }
  out.finish_reason = finish;
  FinishRequest(seq.seq_id(), std::move(out));
  return true;
}

void Engine::FinishRequest(int64_t seq_id, GenerationOutput out) {
  auto it = requests_.find(seq_id);
  OCTET_CHECK(it != requests_.end()) << "finishing unknown sequence " << seq_id;
  Sequence& seq = *it->second.seq;
  scheduler_.Finish(&seq);
  out.prompt_tokens = seq.num_prompt_tokens();
  out.completion_tokens = seq.num_completion_tokens();
  if (observer_) {
    const absl::StatusCode status = out.finish_reason == FinishReason::kCancelled ? absl::StatusCode::kCancelled
                                    : out.finish_reason == FinishReason::kError   ? out.status.code()
                                                                                  : absl::StatusCode::kOk;
    observer_->OnFinish(out.finish_reason, status, out.prompt_tokens, out.completion_tokens,
                        std::chrono::duration<double>(std::chrono::steady_clock::now() - seq.arrival()).count());
  }
  if (seq.sink) seq.sink->Deliver(std::move(out));
  if (seq.deadline() != std::chrono::steady_clock::time_point::max()) --num_with_deadline_;
  requests_.erase(it);
  stats_.num_unfinished.fetch_sub(1, std::memory_order_relaxed);
}

void Engine::PublishStats() {
  // Tokens first: a reader that sees the blocks freed then sees their tokens gone too.
  int64_t tokens = 0;
  for (const auto& [id, request] : requests_) tokens += request.seq->num_tokens();
  stats_.num_tokens_in_flight.store(tokens, std::memory_order_relaxed);
  stats_.num_running.store(static_cast<int32_t>(scheduler_.num_running()), std::memory_order_relaxed);
  stats_.num_waiting.store(static_cast<int32_t>(scheduler_.num_waiting()), std::memory_order_relaxed);
  stats_.num_free_blocks.store(block_manager_.num_free_blocks(), std::memory_order_release);
  stats_.num_preemptions.store(scheduler_.num_preemptions(), std::memory_order_relaxed);
  stats_.prefix_query_tokens.store(scheduler_.prefix_query_tokens(), std::memory_order_relaxed);
  stats_.prefix_hit_tokens.store(scheduler_.prefix_hit_tokens(), std::memory_order_relaxed);
  if (observer_) {
    observer_->OnSnapshot(EngineSnapshot{.num_running = static_cast<int32_t>(scheduler_.num_running()),
                                         .num_waiting = static_cast<int32_t>(scheduler_.num_waiting()),
                                         .num_free_blocks = block_manager_.num_free_blocks(),
                                         .num_cached_free_blocks = block_manager_.num_cached_free_blocks(),
                                         .num_total_blocks = block_manager_.num_blocks(),
                                         .num_preemptions = scheduler_.num_preemptions(),
                                         .prefix_query_tokens = scheduler_.prefix_query_tokens(),
                                         .prefix_hit_tokens = scheduler_.prefix_hit_tokens()});
  }
}

}  // namespace octet
