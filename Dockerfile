# syntax=docker/dockerfile:1
#
# pipedrive-gateway image: a static binary on distroless, non-root, no shell.
#
#   docker build --build-arg VERSION=$(git describe --tags --always --dirty) \
#                --build-arg COMMIT=$(git rev-parse HEAD) -t pipedrive-gateway .
#   docker run --rm -p 8080:8080 -p 9090:9090 pipedrive-gateway
#
# The builder compiles with scripts/build.sh, the same script CI runs.

ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
WORKDIR /src

# Modules first, in their own layer: it is reused until go.mod/go.sum change.
COPY go.mod go.sum ./
RUN go mod download && go mod verify

COPY . .

# .git is not in the build context (see .dockerignore): pass these as build args.
ARG VERSION=dev
ARG COMMIT=unknown
# Set by BuildKit for the platform being built (empty with the legacy builder = native).
ARG TARGETOS
ARG TARGETARCH
RUN --mount=type=cache,target=/root/.cache/go-build \
    VERSION="$VERSION" COMMIT="$COMMIT" GOOS="$TARGETOS" GOARCH="$TARGETARCH" \
    bash ./scripts/build.sh /out/pipedrive-gateway \
 && mkdir -p /out/data

# distroless/static ships CA certificates (/etc/ssl/certs/ca-certificates.crt), tzdata
# and /etc/passwd with the nonroot user 65532; it has no shell and no package manager.
FROM gcr.io/distroless/static-debian12:nonroot

ARG VERSION=dev
ARG COMMIT=unknown
LABEL org.opencontainers.image.title="pipedrive-gateway" \
      org.opencontainers.image.description="Keeps one webhook registered at each connected Pipedrive company and relays its events to NATS JetStream" \
      org.opencontainers.image.source="https://github.com/pipedrive-gateway/pipedrive-gateway" \
      org.opencontainers.image.url="https://github.com/pipedrive-gateway/pipedrive-gateway" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}" \
      org.opencontainers.image.base.name="gcr.io/distroless/static-debian12:nonroot"

COPY --from=build /out/pipedrive-gateway /pipedrive-gateway
# An empty, writable /data so `docker run` works without a volume; the Helm chart
# mounts a PersistentVolumeClaim (embedded NATS) or an emptyDir over it. No VOLUME on
# purpose: an anonymous volume would be created on every `docker run`.
COPY --from=build --chown=65532:65532 /out/data /data

ENV DATA_DIR=/data
USER 65532:65532
# 8080: webhook ingress (HTTP_ADDR). 9090: health, readiness, metrics, admin (OPS_ADDR).
EXPOSE 8080 9090
ENTRYPOINT ["/pipedrive-gateway"]
CMD ["serve"]
