#include "worker/server/worker_control_service.h"

#include <signal.h>
#include <unistd.h>

namespace octet {

grpc::ServerUnaryReactor* WorkerControlService::GetLoad(grpc::CallbackServerContext* context,
                                                        const v1::GetLoadRequest* request, v1::WorkerLoad* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (!model_.ready.load()) {
    reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the worker is still loading its model"));
    return reactor;
  }
  const EngineStats& stats = model_.engine->stats();
  response->set_num_running(stats.num_running.load());
  response->set_num_waiting(stats.num_waiting.load());
  response->set_num_free_kv_blocks(stats.num_free_blocks.load());
  response->set_num_total_kv_blocks(model_.engine->num_kv_blocks());
  response->set_num_steps(stats.num_steps.load());
  response->set_num_preemptions(stats.num_preemptions.load());
  response->set_draining(model_.draining.load());
  response->set_num_unfinished(stats.num_unfinished.load());
  const int32_t total = model_.engine->num_kv_blocks();
  response->set_kv_cache_usage(total > 0 ? static_cast<float>(total - stats.num_free_blocks.load()) / total : 0.0f);
  response->set_num_tokens_in_flight(stats.num_tokens_in_flight.load());
  response->set_kv_capacity_tokens(int64_t{total} * model_.engine->config().block_size);
  response->set_prefix_cache_query_tokens(stats.prefix_query_tokens.load());
  response->set_prefix_cache_hit_tokens(stats.prefix_hit_tokens.load());
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* WorkerControlService::Drain(grpc::CallbackServerContext* context,
                                                      const v1::DrainRequest* request, v1::DrainResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  model_.draining.store(true);
  if (model_.engine != nullptr) response->set_num_unfinished(model_.engine->stats().num_unfinished.load());
  ::kill(::getpid(), SIGTERM);  // the main thread's sigwait takes it and runs the drain
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace octet
