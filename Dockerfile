# syntax=docker/dockerfile:1
# Levqor: one static binary on a distroless base, run as a non-root user.
#   docker build -t levqor --build-arg VERSION=$(git describe --tags --always) .
#   docker run -p 8080:8080 -v levqor-data:/data levqor
# The container's health check is the binary itself: `levqor selftest --quick`.

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
# Modules first, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/levqor/levqor.Version=${VERSION} -X github.com/levqor/levqor.Commit=${COMMIT}" \
      -o /out/levqor ./cmd/levqor
# The data directory, owned by distroless's nonroot user (65532), mode 0700 as Levqor
# creates it itself (docs/adr/0002): the database, its lock, backups and generated secrets.
RUN mkdir -m 0700 /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/levqor /levqor
# COPY copies a directory's contents, not its own mode (moby/moby#38710): --chmod sets it.
COPY --from=build --chown=65532:65532 --chmod=0700 /out/data /data
USER 65532:65532
ENV LEVQOR_ADDR=:8080 \
    LEVQOR_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 8080
# Liveness only (/health): readiness (/ready) is for load balancers, and a database
# outage should not make the orchestrator restart every instance.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["/levqor", "selftest", "--url", "http://127.0.0.1:8080", "--quick"]
# SIGTERM drains requests and running jobs within LEVQOR_SHUTDOWN_TIMEOUT (15 s):
# give the container more than that before SIGKILL (docker stop -t 30).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/levqor"]
CMD ["serve"]
