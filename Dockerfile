# Multi-stage build of catalog-sync's binaries: worker, relay, starter, codec-server and stripe-sandbox.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p catalog-sync-worker -p catalog-sync-relay -p catalog-sync-starter -p catalog-sync-codec-server -p stripe-sandbox

FROM debian:bookworm-slim
# /app/state exists and belongs to the service user, so a volume mounted there (the sandbox's
# state) starts with that owner, not root.
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home /app catalog-sync \
    && mkdir -p /app/state && chown -R 10001:10001 /app
COPY --from=build /src/target/release/worker /src/target/release/relay /src/target/release/starter /src/target/release/codec-server /src/target/release/stripe-sandbox /usr/local/bin/
USER 10001
WORKDIR /app
ENTRYPOINT ["worker"]
