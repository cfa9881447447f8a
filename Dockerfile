# Multi-stage build of catalog-sync's binaries: worker, relay, starter, codec-server and stripe-sandbox.
#
# Dependencies are built in a layer of their own (cargo-chef): `recipe.json` is the workspace's
# manifests and lock file with the sources left out, so the `cook` layer (the SDK, sqlx, tokio …,
# most of the build) is reused from the cache until Cargo.toml or Cargo.lock change, and an edit
# of catalog-sync's own code rebuilds only its crates.
FROM rust:1.95-bookworm AS chef
RUN cargo install cargo-chef --version 0.1.78 --locked
WORKDIR /src

FROM chef AS plan
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS build
COPY --from=plan /src/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json \
    -p catalog-sync-worker -p catalog-sync-relay -p catalog-sync-starter -p catalog-sync-codec-server -p stripe-sandbox
COPY . .
# The commit, for the worker's default build id (Worker Deployment Versioning): the build context
# has no .git. `docker build --build-arg CATALOG_SYNC_GIT_HASH=$(git rev-parse --short=12 HEAD)`;
# without it the build id falls back to a checksum of the worker binary.
ARG CATALOG_SYNC_GIT_HASH=
RUN cargo build --release --locked \
    -p catalog-sync-worker -p catalog-sync-relay -p catalog-sync-starter -p catalog-sync-codec-server -p stripe-sandbox

FROM debian:bookworm-slim
# curl for the compose file's health checks. /app/state exists and belongs to the service user, so
# a volume mounted there (the sandbox's state) starts with that owner, not root.
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home /app catalog-sync \
    && mkdir -p /app/state && chown -R 10001:10001 /app
COPY --from=build /src/target/release/worker /src/target/release/relay /src/target/release/starter /src/target/release/codec-server /src/target/release/stripe-sandbox /usr/local/bin/
USER 10001
WORKDIR /app
ENTRYPOINT ["worker"]
