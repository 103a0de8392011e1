#!/usr/bin/env bash
# Builds the static pipedrive-gateway binary: the one build command that CI and the
# Dockerfile's builder stage both run, so what CI compiles is what the image ships.
#
# Usage: scripts/build.sh OUT
#   VERSION  defaults to `git describe --tags --always --dirty`, else "dev"
#   COMMIT   defaults to `git rev-parse HEAD`, else "unknown"
#   GOOS/GOARCH are honoured as usual (the Dockerfile sets them for cross builds).
set -euo pipefail

if [[ $# -ne 1 || -z "$1" ]]; then
	echo "usage: $0 OUT" >&2
	exit 2
fi

out="$1"
case "$out" in
/*) ;;
*) out="$PWD/$out" ;;
esac

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if [[ -z "${VERSION:-}" ]]; then
	VERSION="$(git -C "$root" describe --tags --always --dirty 2>/dev/null || true)"
	VERSION="${VERSION:-dev}"
fi
if [[ -z "${COMMIT:-}" ]]; then
	COMMIT="$(git -C "$root" rev-parse HEAD 2>/dev/null || true)"
	COMMIT="${COMMIT:-unknown}"
fi

echo "building $out (version=$VERSION commit=$COMMIT goos=${GOOS:-$(go env GOOS)} goarch=${GOARCH:-$(go env GOARCH)})" >&2
cd "$root"
CGO_ENABLED=0 go build -trimpath \
	-ldflags "-s -w -X main.version=$VERSION -X main.commit=$COMMIT" \
	-o "$out" .
