# syntax=docker/dockerfile:1

# ---- build --------------------------------------------------------------
# Same Debian release as the runtime stage, so the binary's glibc matches.
FROM rust:1-bookworm AS builder
WORKDIR /src
COPY . .
# Cache mounts keep the cargo registry and target/ between builds (BuildKit).
# target/ lives in the cache, so the binary is copied out in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
 && install -D -m 0755 target/release/webhook-worker /out/webhook-worker

# ---- runtime ------------------------------------------------------------
# debian:bookworm-slim rather than distroless: the Docker/compose HEALTHCHECK
# needs an HTTP client, and the worker has no self-probe subcommand. curl is
# the only extra tool (Kubernetes probes over HTTP from the kubelet and do not
# use it). ca-certificates provides the system trust store that rustls'
# platform verifier reads for https:// receivers and amqps:// brokers.
FROM debian:bookworm-slim
# Unpinned on purpose: bookworm's point releases carry the security fixes.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 webhook \
 && useradd --system --uid 10001 --gid webhook --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin webhook

COPY --from=builder /out/webhook-worker /usr/local/bin/webhook-worker

# Numeric, so Kubernetes' runAsNonRoot can verify it.
USER 10001:10001

# /metrics, /healthz, /readyz (METRICS_ADDR, default 0.0.0.0:9102).
EXPOSE 9102

HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["curl", "-fsS", "-o", "/dev/null", "--max-time", "2", "http://127.0.0.1:9102/healthz"]

# The worker handles SIGTERM itself (graceful drain within
# WEBHOOK_SHUTDOWN_GRACE); give it more time than that when stopping, e.g.
# `docker stop -t 45`.
ENTRYPOINT ["webhook-worker"]
CMD ["run"]
