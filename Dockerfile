# syntax=docker/dockerfile:1
#
# Caddy with Vigil, built with xcaddy from this checkout by
# scripts/xcaddy-build.sh (the build CI runs), on a slim Debian runtime that
# runs Caddy as an unprivileged user.
#
#   docker build -t vigil .
#   docker run -d -p 80:80 -p 443:443 -p 443:443/udp \
#     -v "$PWD/Caddyfile:/etc/caddy/Caddyfile:ro" -v vigil-data:/data vigil
#
# The image's default config is Caddyfile.example (:8080, upstream
# 127.0.0.1:9080). The health check asks Caddy's admin endpoint
# (localhost:2019, inside the container) for GET /vigil/health: 200 when
# Vigil is healthy, 503 when its store is down. A Caddyfile that moves or
# disables the admin endpoint needs its own HEALTHCHECK.

# The build stage's Go is the release line go.mod names (go 1.26.x); bookworm,
# like the runtime stage. The binary is static (CGO_ENABLED=0) either way.
ARG GO_VERSION=1.26
FROM golang:${GO_VERSION}-bookworm AS build
# Use the image's Go; never download another toolchain.
ENV GOTOOLCHAIN=local
WORKDIR /src
COPY . .
# The script installs xcaddy (go install) when missing, reads xcaddy.json, and
# builds Caddy with --with github.com/vigilsec/vigil=/src; it then checks that
# the binary lists vigil, http.handlers.vigil and admin.api.vigil.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    bash scripts/xcaddy-build.sh /out/caddy

FROM debian:bookworm-slim
# ca-certificates: ACME and HTTPS upstreams; curl: the health check;
# libcap2-bin: setcap below.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl libcap2-bin \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 vigil \
    && useradd --system --uid 10001 --gid vigil --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin vigil \
    && mkdir -p /etc/caddy /config /data /srv /var/log/vigil \
    && chown vigil:vigil /config /data /var/log/vigil

COPY --from=build /out/caddy /usr/bin/caddy
# Bind :80 and :443 without root (as Caddy's official image does). Under
# --cap-drop=ALL, add --cap-add=NET_BIND_SERVICE.
RUN setcap cap_net_bind_service=+ep /usr/bin/caddy && caddy version
COPY Caddyfile.example /etc/caddy/Caddyfile

# Caddy's storage (certificates, ACME accounts) in /data/caddy, its autosaved
# config in /config/caddy; /var/log/vigil for the audit log.
ENV XDG_CONFIG_HOME=/config XDG_DATA_HOME=/data
VOLUME ["/config", "/data"]
WORKDIR /srv
USER 10001:10001
EXPOSE 80 443 443/udp 8080

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD curl -fsS -o /dev/null http://localhost:2019/vigil/health || exit 1

CMD ["caddy", "run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"]
