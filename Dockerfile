# Build stage: compile the release binary (migrations and seed data are
# embedded in it, so the runtime image needs nothing else).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
COPY migrations ./migrations
COPY data ./data
RUN cargo build --release --locked && strip target/release/accords

# Runtime stage: a small Debian with a non-root user.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/accords --create-home accords
COPY --from=build /src/target/release/accords /usr/local/bin/accords
USER accords
WORKDIR /var/lib/accords
ENV ACCORDS_BIND=0.0.0.0:8080 \
    DATABASE_URL=sqlite:/var/lib/accords/accords.db
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && head -n1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["accords"]
CMD ["serve"]
