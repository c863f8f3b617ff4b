// The prefill-sized linear layer of bf16 weights (the LM head over many rows, recipe `none`) on cuBLASLt's bf16
// tensor-core GEMM at fp32 precision of the activations: x is split into three bf16 parts (hi = bf16(x), mid =
// bf16(x - hi), lo = bf16(x - hi - mid)) that go through one GEMM of 3T rows (the weights are read once), and
// y = y_hi + (y_mid + y_lo). The parts carry x to ~2^-26 relative (two parts, 2^-18, left 1.5e-4 relative L2 on the
// logits of a bf16 test model), bf16 products are exact in fp32 and the GEMM accumulates in fp32, so y matches the
// fp32 SIMT GEMM (cpu::Linear) to a few 1e-6 of sum |x w|, at tensor-core speed.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <memory>

namespace octet::cuda {

class DenseGemmLt {
 public:
  static constexpr size_t kLtWorkspaceBytes = size_t{32} << 20;

  DenseGemmLt();  // creates the cuBLASLt handle (aborts with file:line when that fails)
  ~DenseGemmLt();
  DenseGemmLt(const DenseGemmLt&) = delete;
  DenseGemmLt& operator=(const DenseGemmLt&) = delete;

  // Scratch for Run: the split activations, the two partial products, cuBLASLt's workspace.
  static size_t WorkspaceBytes(int64_t tokens, int64_t in, int64_t out_features);

  // y [tokens, out] fp32 = x [tokens, in] fp32 @ w [out, in]^T (bf16). in and out multiples of 8 (16-byte rows);
  // device pointers, 16-byte aligned. cudaErrorNotSupported when cuBLASLt has no algorithm for the shape.
  cudaError_t Run(const float* x, const __nv_bfloat16* w, float* y, int64_t tokens, int64_t in, int64_t out_features,
                  void* workspace, size_t workspace_bytes, cudaStream_t stream);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace octet::cuda
