// A fake worker for C++ tests: octet.v1.Generation (sync API) plus gRPC's default health service, in-process on a
// free loopback port. Generate streams "t0 ", "t1 ", ... then a last message with finish_reason STOP.
#pragma once

#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "octet/v1/generation.grpc.pb.h"
#include "octet/v1/worker.grpc.pb.h"

namespace octet::testing {

// octet.v1.WorkerControl answering GetLoad with whatever `load` holds.
class FakeWorkerControl final : public v1::WorkerControl::Service {
 public:
  grpc::Status GetLoad(grpc::ServerContext*, const v1::GetLoadRequest*, v1::WorkerLoad* response) override {
    std::lock_guard<std::mutex> lock(mu);
    *response = load;
    return grpc::Status::OK;
  }
  std::mutex mu;
  v1::WorkerLoad load;  // guarded by mu
};

class FakeWorker final : public v1::Generation::Service {
 public:
  // with_load_reports: also serve WorkerControl.GetLoad (control()), as real workers do. port: 0 picks a free one;
  // another one (e.g. a stopped worker's) is bound as it is.
  explicit FakeWorker(bool with_load_reports = false, int port = 0) {
    grpc::EnableDefaultHealthCheckService(true);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:" + std::to_string(port), grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(this);
    if (with_load_reports) builder.RegisterService(&control_);
    server_ = builder.BuildAndStart();
  }
  FakeWorkerControl& control() { return control_; }
  ~FakeWorker() override { Shutdown(); }

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }
  void SetServing(bool serving) { server_->GetHealthCheckService()->SetServingStatus(serving); }
  void Shutdown() {
    if (server_ != nullptr) server_->Shutdown(std::chrono::system_clock::now());
  }

  // Knobs, set before the calls they affect.
  std::atomic<int> num_chunks{5};
  std::atomic<int> chunk_delay_ms{0};
  std::atomic<int> abort_code{0};  // a grpc::StatusCode: Generate fails with it after abort_after chunks
  std::atomic<int> abort_after{0};
  std::string abort_message = "fake failure";

  // What it saw.
  std::atomic<int> generate_calls{0};
  std::atomic<int> cancelled_calls{0};       // Generate calls that saw IsCancelled()
  std::atomic<int64_t> last_deadline_ms{0};  // ms left at the arrival of the last Generate (-1: none)
  std::atomic<int> tokenize_calls{0};

  grpc::Status Generate(grpc::ServerContext* context, const v1::GenerateRequest* request,
                        grpc::ServerWriter<v1::GenerateResponse>* writer) override {
    ++generate_calls;
    const auto deadline = context->deadline();
    last_deadline_ms =
        deadline == std::chrono::system_clock::time_point::max()
            ? -1
            : std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::system_clock::now())
                  .count();
    const int n = num_chunks;
    for (int i = 0; i < n; ++i) {
      if (abort_code != 0 && i == abort_after) {
        return grpc::Status(static_cast<grpc::StatusCode>(abort_code.load()), abort_message);
      }
      if (chunk_delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(chunk_delay_ms));
      if (context->IsCancelled()) {
        ++cancelled_calls;
        return grpc::Status::CANCELLED;
      }
      v1::GenerateResponse chunk;
      chunk.set_request_id(request->request_id());
      chunk.set_text("t" + std::to_string(i) + " ");
      chunk.add_token_ids(i);
      writer->Write(chunk);
    }
    v1::GenerateResponse last;
    last.set_request_id(request->request_id());
    last.set_finish_reason(v1::FINISH_REASON_STOP);
    last.mutable_usage()->set_completion_tokens(n);
    writer->Write(last);
    return grpc::Status::OK;
  }

  grpc::Status Tokenize(grpc::ServerContext*, const v1::TokenizeRequest* request,
                        v1::TokenizeResponse* response) override {
    ++tokenize_calls;
    for (char c : request->text()) response->add_token_ids(static_cast<unsigned char>(c));
    return grpc::Status::OK;
  }

  grpc::Status GetModelInfo(grpc::ServerContext*, const v1::GetModelInfoRequest*, v1::ModelInfo* info) override {
    info->set_model_name("fake-" + std::to_string(port_));
    info->set_backend("cpu");
    return grpc::Status::OK;
  }

 private:
  int port_ = 0;
  FakeWorkerControl control_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace octet::testing
