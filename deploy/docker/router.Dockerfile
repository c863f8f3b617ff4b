# syntax=docker/dockerfile:1
# octet-router, which needs no GPU. From the repository root:
#   docker build -f deploy/docker/router.Dockerfile -t octet-router:0.1.0 .
# The build stage is Debian 12, the platform CI runs on, so scripts/setup and the cmake presets run there exactly
# as in CI. The runtime stage is NVIDIA's smallest CUDA image (the same Ubuntu base as the worker's) with the
# binary and the libraries it links (deploy/docker/bundle-libs), run as a non-root user.
ARG CUDA_IMAGE_TAG=13.0.1

FROM debian:12 AS build
WORKDIR /src
# Set-up first, so that a change of the sources does not repeat it.
COPY scripts/setup scripts/requirements-test.txt scripts/
RUN scripts/setup
COPY . .
RUN --mount=type=cache,target=/root/.cache/ccache \
    cmake --preset cpu -DBUILD_TESTING=OFF && \
    cmake --build --preset cpu --target octet-router
RUN deploy/docker/bundle-libs /opt/octet/lib build/cpu/router/octet-router

FROM nvidia/cuda:${CUDA_IMAGE_TAG}-base-ubuntu24.04
COPY --from=build /opt/octet/lib/ /opt/octet/lib/
COPY --from=build /src/build/cpu/router/octet-router /usr/local/bin/octet-router
ENV LD_LIBRARY_PATH=/opt/octet/lib
RUN useradd --uid 10001 --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin octet
USER 10001:10001
# gRPC, OpenAI-compatible HTTP and Prometheus /metrics, as deploy/k8s sets them.
EXPOSE 50051 8000 9090
ENTRYPOINT ["/usr/local/bin/octet-router"]
