# syntax=docker/dockerfile:1
# Multi-stage build: a locked release build, then a slim runtime that holds
# only the binary and CA certificates, running as a non-root numeric user.
# tokengate writes no file (README, "Image"), so the root filesystem can be
# read-only with no tmpfs at all.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock rustfmt.toml ./
COPY src ./src
# Cargo.toml names the criterion benches; cargo refuses a manifest whose
# targets are missing, even to build only the binary.
COPY benches ./benches
# config/dev.yaml and its dev secret are compiled in as the embedded default.
COPY config ./config
RUN cargo build --release --locked

FROM debian:bookworm-slim
# The system roots (for rediss://) are one file: copied from the build image
# rather than installing ca-certificates, which would pull in openssl and
# libssl3 (8.7 MB) that nothing here runs.
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /src/target/release/tokengate /usr/local/bin/tokengate
LABEL org.opencontainers.image.title="tokengate" \
      org.opencontainers.image.description="Sidecar authentication reverse proxy: JWT verification, Redis-backed revocation" \
      org.opencontainers.image.licenses="Apache-2.0"
USER 65532:65532
# 8080: proxy listener; 9090: admin (metrics, health).
EXPOSE 8080 9090
# Mount your config here (ConfigMap) or set TOKENGATE_CONFIG / --config.
ENV TOKENGATE_CONFIG=/etc/tokengate/tokengate.yaml \
    TOKENGATE_LOG_FORMAT=json
ENTRYPOINT ["/usr/local/bin/tokengate"]
CMD ["run"]
