// fp8_gemv_bench: cuda::Fp8Gemv at M = 1, 2, 4, 8 on Qwen3.5-27B's projections against the device's copy bandwidth
// measured in the same run. Prints a table; writes fp8_gemv_<card>.json into --out (default $OUT, else .).
//
//   fp8_gemv_bench [--out=DIR] [--commit=HASH] [--samples=N]
//
// Copy bandwidth: cudaMemcpyAsync device-to-device of 1 GiB, bytes read + written over the median time. GEMV: the
// median over samples of one CUDA-graph replay of >= 20 launches (events around the replay, divided by the launch
// count); each launch reads its own weight copy out of enough copies to overflow L2 four times, so the weights come
// from HBM as they do in a decoder layer. Achieved weight bandwidth = N * K bytes / time (scales and activations,
// < 0.1%, not counted); ratio = that over the copy bandwidth.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/fp8_gemv.h"

namespace {

// Random E4M3 codes that are never NaN (0x7F, 0xFF), never all zero: timing on zeros can flatter a kernel.
__global__ void FillCodes(uint8_t* p, size_t n, uint64_t seed) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    uint64_t z = (i + 1) * 0x9e3779b97f4a7c15ull ^ seed;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    uint8_t c = static_cast<uint8_t>(z >> 40);
    if ((c & 0x7f) == 0x7f) c ^= 0x01;
    p[i] = c;
  }
}

__global__ void FillScales(float* p, size_t n, float value) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    p[i] = value * (1.0f + static_cast<float>(i % 7) / 8.0f);
  }
}

float Median(std::vector<float> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

std::string Slug(const std::string& name) {
  for (const char* card : {"H200", "H100", "H800", "H20", "B200", "A100"}) {
    if (name.find(card) != std::string::npos) {
      std::string s(card);
      for (char& c : s) c = static_cast<char>(std::tolower(c));
      return s;
    }
  }
  std::string s;
  for (char c : name) s += std::isalnum(static_cast<unsigned char>(c)) ? static_cast<char>(std::tolower(c)) : '_';
  return s;
}

struct Shape {
  const char* name;
  int64_t n, k;
};

struct Row {
  std::string shape;
  int64_t n, k, m;
  const char* path;  // "auto" (the launcher's choice), "mma" (tensor core) or "fma"
  int split;         // 0 = the launcher's choice
  int variant;       // Fp8GemvOptions::variant
  float us;
  double gbps, ratio;
};

}  // namespace

int main(int argc, char** argv) {
  std::string out_dir = std::getenv("OUT") != nullptr ? std::getenv("OUT") : ".";
  std::string commit = std::getenv("OCTET_COMMIT") != nullptr ? std::getenv("OCTET_COMMIT") : "unknown";
  int samples = 60;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--out=", 0) == 0)
      out_dir = a.substr(6);
    else if (a.rfind("--commit=", 0) == 0)
      commit = a.substr(9);
    else if (a.rfind("--samples=", 0) == 0)
      samples = std::max(50, std::atoi(a.c_str() + 10));
    else {
      std::fprintf(stderr, "usage: %s [--out=DIR] [--commit=HASH] [--samples=N>=50]\n", argv[0]);
      return 2;
    }
  }

  cudaDeviceProp prop{};
  CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  cudaStream_t stream;
  CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  cudaEvent_t start, stop;
  CUDA_CHECK(cudaEventCreate(&start));
  CUDA_CHECK(cudaEventCreate(&stop));
  const auto time_ms = [&](auto&& body) {
    CUDA_CHECK(cudaEventRecord(start, stream));
    body();
    CUDA_CHECK(cudaEventRecord(stop, stream));
    CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0.0f;
    CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    return ms;
  };

  // 1. Copy bandwidth.
  const size_t copy_bytes = size_t{1} << 30;
  uint8_t *src = nullptr, *dst = nullptr;
  CUDA_CHECK(cudaMalloc(&src, copy_bytes));
  CUDA_CHECK(cudaMalloc(&dst, copy_bytes));
  FillCodes<<<1024, 256, 0, stream>>>(src, copy_bytes, 1);
  CUDA_CHECK(cudaGetLastError());
  std::vector<float> copy_ms;
  for (int i = 0; i < 25; ++i) {
    const float ms =
        time_ms([&] { CUDA_CHECK(cudaMemcpyAsync(dst, src, copy_bytes, cudaMemcpyDeviceToDevice, stream)); });
    if (i >= 5) copy_ms.push_back(ms);
  }
  CUDA_CHECK(cudaFree(src));
  CUDA_CHECK(cudaFree(dst));
  const double copy_gbps = 2.0 * static_cast<double>(copy_bytes) / (Median(copy_ms) * 1e-3) / 1e9;
  std::printf("device: %s, %d SMs, L2 %d MB; copy (D2D 1 GiB, read+write): %.0f GB/s\n", prop.name,
              prop.multiProcessorCount, prop.l2CacheSize >> 20, copy_gbps);

  // 2. The GEMV.
  const Shape shapes[] = {{"mlp.gate_up", 34816, 5120}, {"mlp.down", 5120, 17408},    {"attn.qkv", 14336, 5120},
                          {"attn.o", 5120, 6144},       {"gdn.in_qkvz", 16384, 5120}, {"gdn.out", 5120, 6144}};
  const int tokens_list[] = {1, 2, 4, 8};
  std::vector<Row> rows;
  for (const Shape& s : shapes) {
    const size_t w_bytes = static_cast<size_t>(s.n * s.k);
    const int copies = static_cast<int>(
        std::clamp<size_t>((4 * static_cast<size_t>(prop.l2CacheSize) + w_bytes - 1) / w_bytes, 1, 64));
    const int launches = copies * ((20 + copies - 1) / copies);
    const int64_t groups = (s.k + 127) / 128;
    std::vector<uint8_t*> wq(copies);
    for (int c = 0; c < copies; ++c) {
      CUDA_CHECK(cudaMalloc(&wq[c], w_bytes));
      FillCodes<<<1024, 256, 0, stream>>>(wq[c], w_bytes, 100 + c);
    }
    float *ws = nullptr, *xs = nullptr, *y = nullptr;
    uint8_t* xq = nullptr;
    const size_t ws_n = static_cast<size_t>((s.n + 127) / 128 * groups);
    CUDA_CHECK(cudaMalloc(&ws, ws_n * sizeof(float)));
    CUDA_CHECK(cudaMalloc(&xs, 8 * groups * sizeof(float)));
    CUDA_CHECK(cudaMalloc(&xq, 8 * s.k));
    CUDA_CHECK(cudaMalloc(&y, 8 * s.n * sizeof(float)));
    FillScales<<<64, 256, 0, stream>>>(ws, ws_n, 1e-3f);
    FillScales<<<64, 256, 0, stream>>>(xs, 8 * groups, 1e-2f);
    FillCodes<<<64, 256, 0, stream>>>(xq, 8 * s.k, 7);
    CUDA_CHECK(cudaGetLastError());

    for (int m : tokens_list) {
      // The defaults, then at M = 1 and 8 both paths with every split for comparison.
      // (path, split, variant): the defaults, then at M = 1 and 8 both paths with every split, and the tile
      // variants (Fp8GemvOptions::variant) with the launcher's split.
      std::vector<std::tuple<const char*, int, int>> configs = {{"auto", 0, 0}};
      if (m == 1 || m == 8) {
        for (const char* path : {"mma", "fma"}) {
          for (int split : {1, 2, 4, 8}) configs.emplace_back(path, split, 0);
        }
        if (m == 1) {
          for (int variant : {1, 2, 3, 4}) configs.emplace_back("fma", 0, variant);
        }
      } else {
        configs.emplace_back("fma", 0, 0);
      }
      for (const auto& [path, split, variant] : configs) {
        octet::cuda::Fp8GemvOptions options;
        const std::string name(path);
        options.path = name == "fma"   ? octet::cuda::Fp8GemvPath::kFma
                       : name == "mma" ? octet::cuda::Fp8GemvPath::kTensorCore
                                       : octet::cuda::Fp8GemvPath::kAuto;
        options.split = split;
        options.variant = variant;
        const auto launch = [&](int c) {
          CUDA_CHECK(octet::cuda::Fp8Gemv<float>(xq, xs, wq[c % copies], ws, y, m, s.k, s.n, stream, options));
        };
        for (int c = 0; c < 2 * copies; ++c) launch(c);  // warm-up: module load, occupancy query, clocks
        CUDA_CHECK(cudaStreamSynchronize(stream));
        cudaGraph_t graph;
        cudaGraphExec_t exec;
        CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeRelaxed));
        for (int c = 0; c < launches; ++c) launch(c);
        CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
        CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
        for (int i = 0; i < 3; ++i) CUDA_CHECK(cudaGraphLaunch(exec, stream));
        std::vector<float> us;
        for (int i = 0; i < samples; ++i) {
          us.push_back(time_ms([&] { CUDA_CHECK(cudaGraphLaunch(exec, stream)); }) * 1e3f / launches);
        }
        CUDA_CHECK(cudaGraphExecDestroy(exec));
        CUDA_CHECK(cudaGraphDestroy(graph));
        const float t = Median(us);
        const double gbps = static_cast<double>(w_bytes) / (t * 1e-6) / 1e9;
        rows.push_back({s.name, s.n, s.k, m, path, split, variant, t, gbps, gbps / copy_gbps});
      }
    }
    for (uint8_t* p : wq) CUDA_CHECK(cudaFree(p));
    CUDA_CHECK(cudaFree(ws));
    CUDA_CHECK(cudaFree(xs));
    CUDA_CHECK(cudaFree(xq));
    CUDA_CHECK(cudaFree(y));
  }

  // 3. Report: JSON, then the table (last, so that it ends the output).
  char date[32];
  const std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  const std::string slug = Slug(prop.name);
  const std::string path = out_dir + "/fp8_gemv_" + slug + ".json";
  if (FILE* f = std::fopen(path.c_str(), "w")) {
    std::fprintf(f, "{\n  \"benchmark\": \"fp8_gemv\",\n  \"card\": \"%s\",\n  \"card_slug\": \"%s\",\n", prop.name,
                 slug.c_str());
    std::fprintf(f, "  \"date\": \"%s\",\n  \"commit\": \"%s\",\n  \"sms\": %d,\n  \"l2_bytes\": %d,\n", date,
                 commit.c_str(), prop.multiProcessorCount, prop.l2CacheSize);
    std::fprintf(f, "  \"copy_bandwidth_gbps\": %.1f,\n  \"samples\": %d,\n  \"results\": [\n", copy_gbps, samples);
    for (size_t i = 0; i < rows.size(); ++i) {
      const Row& r = rows[i];
      std::fprintf(f,
                   "    {\"shape\": \"%s\", \"n\": %lld, \"k\": %lld, \"m\": %lld, \"path\": \"%s\", "
                   "\"split\": %s, \"variant\": %d, \"us\": %.3f, \"weight_gbps\": %.1f, \"ratio_to_copy\": %.4f}%s\n",
                   r.shape.c_str(), static_cast<long long>(r.n), static_cast<long long>(r.k),
                   static_cast<long long>(r.m), r.path, r.split == 0 ? "\"auto\"" : std::to_string(r.split).c_str(),
                   r.variant, r.us, r.gbps, r.ratio, i + 1 < rows.size() ? "," : "");
    }
    std::fprintf(f, "  ]\n}\n");
    std::fclose(f);
    std::printf("wrote %s\n", path.c_str());
  } else {
    std::fprintf(stderr, "cannot write %s\n", path.c_str());
  }
  std::printf("\nfp8_gemv on %s (%s), copy %.0f GB/s; path mma = tensor core; split = warps per row tile\n", prop.name,
              date, copy_gbps);
  std::printf("%-11s %5s %5s %1s %4s %5s %3s %8s %6s %6s\n", "shape", "N", "K", "M", "path", "split", "var", "us",
              "GB/s", "ratio");
  for (const Row& r : rows) {
    std::printf("%-11s %5lld %5lld %1lld %4s %5s %3d %8.2f %6.0f %6.3f\n", r.shape.c_str(), static_cast<long long>(r.n),
                static_cast<long long>(r.k), static_cast<long long>(r.m), r.path,
                r.split == 0 ? "auto" : std::to_string(r.split).c_str(), r.variant, r.us, r.gbps, r.ratio);
  }
  return 0;
}
