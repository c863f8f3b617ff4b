// WorkerControlService: octet.v1.WorkerControl — the worker's load, read from the engine's counters.
#pragma once

#include <grpcpp/grpcpp.h>

#include "octet/v1/worker.grpc.pb.h"
#include "worker/server/served_model.h"

namespace octet {

class WorkerControlService final : public v1::WorkerControl::CallbackService {
 public:
  explicit WorkerControlService(ServedModel& model) : model_(model) {}

  grpc::ServerUnaryReactor* GetLoad(grpc::CallbackServerContext* context, const v1::GetLoadRequest* request,
                                    v1::WorkerLoad* response) override;
  // Marks the worker draining and wakes the main thread (it raises SIGTERM, which octet-worker's main waits for).
  grpc::ServerUnaryReactor* Drain(grpc::CallbackServerContext* context, const v1::DrainRequest* request,
                                  v1::DrainResponse* response) override;

 private:
  ServedModel& model_;
};

}  // namespace octet
