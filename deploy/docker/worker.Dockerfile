# syntax=docker/dockerfile:1
# octet-worker for NVIDIA GPUs (sm_90a: H100, H200). From the repository root:
#   docker build -f deploy/docker/worker.Dockerfile -t octet-worker:0.1.0 .
# The build stage is Debian 12, the platform CI runs on, so scripts/setup and the cmake presets run there exactly
# as in CI; the CUDA 13 toolkit comes from NVIDIA's devel image. The runtime stage is NVIDIA's CUDA runtime image
# (cuBLASLt included) with the binary and the libraries it links (deploy/docker/bundle-libs), run as a non-root user.
ARG CUDA_IMAGE_TAG=13.0.1

FROM nvidia/cuda:${CUDA_IMAGE_TAG}-devel-ubuntu24.04 AS cuda

FROM debian:12 AS build
COPY --from=cuda /usr/local/cuda-13.0 /usr/local/cuda-13.0
RUN ln -s /usr/local/cuda-13.0 /usr/local/cuda
WORKDIR /src
# Set-up first, so that a change of the sources does not repeat it.
COPY scripts/setup scripts/requirements-test.txt scripts/
RUN scripts/setup
COPY . .
RUN --mount=type=cache,target=/root/.cache/ccache \
    cmake --preset cuda -DBUILD_TESTING=OFF && \
    cmake --build --preset cuda --target octet-worker
RUN deploy/docker/bundle-libs /opt/octet/lib build/cuda/worker/server/octet-worker

FROM nvidia/cuda:${CUDA_IMAGE_TAG}-runtime-ubuntu24.04
COPY --from=build /opt/octet/lib/ /opt/octet/lib/
COPY --from=build /src/build/cuda/worker/server/octet-worker /usr/local/bin/octet-worker
ENV LD_LIBRARY_PATH=/opt/octet/lib:/usr/local/nvidia/lib:/usr/local/nvidia/lib64
RUN useradd --uid 10001 --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin octet
USER 10001:10001
# gRPC (octet.v1.Generation, grpc.health.v1) and Prometheus /metrics, as deploy/k8s sets them.
EXPOSE 50051 9090
ENTRYPOINT ["/usr/local/bin/octet-worker"]
