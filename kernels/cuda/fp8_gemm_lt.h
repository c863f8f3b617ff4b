// The prefill FP8 GEMM: cuBLASLt's block-scaled FP8 matmul (Hopper, cuBLAS >= 12.9), y [tokens, out] fp32 =
// cpu::LinearFp8(xq, xs, wq, ws) up to the order of the fp32 accumulation. For prefill-sized token counts; decode
// (<= 8 tokens) takes Fp8Gemv.
//
// The cuBLASLt call (column-major, "TN", the only FP8 form): out^T [N, T] = W [N, K] x^T, i.e.
//   A = wq: K x N col-major, lda = K, TRANSA = T; A_SCALE_MODE = BLK128x128_32F (a 128x128 block per scale)
//   B = xq: K x T col-major, ldb = K, TRANSB = N; B_SCALE_MODE = VEC128_32F (a 1x128 group per scale)
//   C = D = y: N x T col-major fp32, ldd = N (= row-major [T, N]); alpha 1, beta 0, FAST_ACCUM 0 (PyTorch's scaled_gemm
//   refuses fast accumulation with these scale modes; the accurate mode is the one we want anyway)
// Scale layouts cuBLASLt reads (cuBLAS docs "scaling factors layouts", as enforced by PyTorch's _scaled_mm, pytorch
// PR #166752; TransformerEngine's GEMM-ready Float8BlockQuantizer shapes agree, though TE also pads T to a multiple
// of 4), with Kb = ceil(K/128):
//   VEC128 (activations): [Kb][T] fp32, T contiguous: element (t, g) at g * T + t. Ours is [T][Kb] (the transpose),
//     so Run transposes xs into the workspace first (a small kernel; T * Kb floats).
//   BLK128x128 (weights): [ceil(N/128)][L4] fp32, L4 = round_up(Kb, 4): element (n/128, g) at (n/128) * L4 + g. Ours
//     is the same with row stride Kb; PrepareWeightScales pads the rows (zeros) once at load. When Kb % 4 == 0 (every
//     Qwen3.5-27B projection) the two layouts are the same bytes.
//
// Numerics: the E4M3 products are exact, but the tensor core sums them in its own order and precision (Hopper's FP8
// MMA adds products at a reduced alignment, ~14 bits kept per step, DeepSeek-V3 tech report 3.3.2) before cuBLAS
// scales each 128-group's partial by xs * ws and adds it in fp32. So y is not bit-exact with LinearFp8; see
// tests/gpu/fp8_gemm_lt_test.cc for the stated tolerance and the measured error.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <memory>

namespace octet::cuda {

// cuBLASLt block-scaled FP8 GEMM: y [tokens, out] fp32 = LinearFp8(xq, xs, wq, ws) (cpu/linear.h), for prefill-sized
// tokens. Caches one matmul plan (descriptors + heuristic algorithm) per (tokens, in, out) shape. Not thread-safe:
// one object per worker thread (Run changes the cached descriptors' scale pointers).
class Fp8GemmLt {
 public:
  // The most cuBLASLt workspace a plan may use (NVIDIA's recommendation for Hopper).
  static constexpr size_t kLtWorkspaceBytes = size_t{32} << 20;
  // Pointers Run reads or writes through cuBLASLt must be aligned to this many bytes (the plans are chosen for it).
  static constexpr size_t kAlignment = 16;

  Fp8GemmLt();  // creates the cuBLASLt handle (aborts with file:line on failure)
  ~Fp8GemmLt();
  Fp8GemmLt(const Fp8GemmLt&) = delete;
  Fp8GemmLt& operator=(const Fp8GemmLt&) = delete;

  // Whether this class takes the shape: tokens a multiple of 4 (cuBLASLt refuses VEC128 activation-scale rows of
  // [ceil(K/128)][T] that are not 16-byte aligned: measured, CUBLAS_STATUS_NOT_SUPPORTED on an H200 with cuBLASLt
  // 13.1), in % 128 == 0 (whole groups), out_features % 16 == 0 (FP8's 16-byte alignment of m), sizes within
  // cuBLASLt's int32 limits. When false the caller uses the GEMV in chunks.
  // cuBLASLt itself can still refuse at run time (not a Hopper, old cuBLAS): Run then returns cudaErrorNotSupported.
  static bool Supports(int64_t tokens, int64_t in, int64_t out_features);

  // Bytes of scratch Run needs for this shape: the transposed activation scales (256-byte aligned) + kLtWorkspaceBytes.
  static size_t WorkspaceBytes(int64_t tokens, int64_t in, int64_t out_features);

  // Bytes of the cuBLASLt weight-scale layout: ceil(out/128) * round_up(ceil(in/128), 4) floats.
  static size_t WeightScaleBytes(int64_t in, int64_t out_features);

  // ws row-major [ceil(out/128), ceil(in/128)] (QuantizeWeightFp8's layout) -> ws_lt [ceil(out/128)][round_up(
  // ceil(in/128), 4)] (WeightScaleBytes; padding zeroed). Device pointers; asynchronous on stream. Once, at load.
  static cudaError_t PrepareWeightScales(const float* ws, float* ws_lt, int64_t in, int64_t out_features,
                                         cudaStream_t stream);

  // y [tokens, out_features] = LinearFp8(xq [tokens, in], xs [tokens, ceil(in/128)], wq [out_features, in], ws) with
  // the weight scales in ws_lt (PrepareWeightScales). Device pointers; xq, wq, ws_lt, y and workspace 16-byte aligned;
  // workspace_bytes >= WorkspaceBytes(tokens, in, out_features). Asynchronous on stream; the first call for a shape
  // also runs cuBLASLt's heuristic on the host (no device work; fine under stream capture). Never aborts:
  // cudaErrorNotSupported when !Supports(...) or cuBLASLt has no algorithm for the shape (cached: later calls fail
  // fast), cudaErrorInvalidValue for null/misaligned pointers or a short workspace, else the mapped cuBLASLt or launch
  // error.
  cudaError_t Run(const uint8_t* xq, const float* xs, const uint8_t* wq, const float* ws_lt, float* y, int64_t tokens,
                  int64_t in, int64_t out_features, void* workspace, size_t workspace_bytes, cudaStream_t stream);

  // The cuBLASLt status name of the last failed cuBLASLt call in Run ("" if none), for error messages.
  const char* LastLtStatus() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace octet::cuda
