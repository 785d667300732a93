# syntax=docker/dockerfile:1
# Multi-stage build: a locked release build, then a slim runtime that holds
# only the binary and CA certificates, running as a non-root numeric user.

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
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/tokengate /usr/local/bin/tokengate
USER 65532:65532
# 8080: proxy listener; 9090: admin (metrics, health).
EXPOSE 8080 9090
# Mount your config here (ConfigMap) or set TOKENGATE_CONFIG / --config.
ENV TOKENGATE_CONFIG=/etc/tokengate/tokengate.yaml \
    TOKENGATE_LOG_FORMAT=json
ENTRYPOINT ["/usr/local/bin/tokengate"]
CMD ["run"]
