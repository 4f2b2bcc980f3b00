# syntax=docker/dockerfile:1
# One image, six binaries. Each function's image config picks its binary
# as the entry point (infrastructure/lambda.tf; notify runs report-on-access):
#   /var/task/access-requested, /var/task/grant-access,
#   /var/task/hold-access, /var/task/revoke-access,
#   /var/task/report-on-access, /var/task/reconcile-access
#
# Built on Amazon Linux 2023 itself, so the binaries need no newer glibc than
# the Lambda runtime has (2.34). scripts/check-image-build runs the same
# cargo build in CI, where no Docker engine is available.
#
# Either architecture (Terraform's `architecture`): both base images are
# multi-arch and every stage builds natively for the platform asked for, so
#   docker buildx build --platform linux/arm64 -t <image> .
# builds for Graviton (under QEMU emulation on an x86_64 host: slower, same
# result), and --platform linux/amd64 (or none, on x86_64) for x86_64.

ARG RUST_VERSION=1.95.0

FROM public.ecr.aws/amazonlinux/amazonlinux:2023 AS toolchain
ARG RUST_VERSION
# The base image is pinned to AL2023; its package versions move with it.
# hadolint ignore=DL3041
RUN dnf install -y --setopt=install_weak_deps=False gcc gcc-c++ make perl-FindBin perl-IPC-Cmd tar gzip \
    && dnf clean all
ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo PATH=/usr/local/cargo/bin:$PATH
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs \
      | sh -s -- -y --profile minimal --default-toolchain "${RUST_VERSION}" \
    && cargo install cargo-chef --locked --version 0.1.73

FROM toolchain AS planner
WORKDIR /build
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM toolchain AS builder
WORKDIR /build
COPY --from=planner /build/recipe.json recipe.json
# The six function packages only (-p, not --bin): features are unified over
# the packages a build selects, and break-glass-local's (people's credential
# providers, a second TLS provider, log filters) must not reach the functions.
# Dependencies only: cached until Cargo.lock changes.
RUN cargo chef cook --release --locked --recipe-path recipe.json \
      -p access-requested -p grant-access -p hold-access -p revoke-access -p report-on-access -p reconcile-access
COPY . .
RUN cargo build --release --locked \
      -p access-requested -p grant-access -p hold-access -p revoke-access -p report-on-access -p reconcile-access

FROM public.ecr.aws/lambda/provided:al2023
COPY --from=builder /build/target/release/access-requested \
                    /build/target/release/grant-access \
                    /build/target/release/hold-access \
                    /build/target/release/revoke-access \
                    /build/target/release/report-on-access \
                    /build/target/release/reconcile-access \
                    /var/task/
# A sensible default; every function overrides it.
ENTRYPOINT ["/var/task/access-requested"]
