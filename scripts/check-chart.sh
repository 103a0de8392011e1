#!/usr/bin/env bash
# Offline CI for the Helm chart: lint and render it with every ci/ values file, then run
# the Go tests that decode the manifests strictly and check them.
# Needs only Go and the Go module proxy: helm is built from source when missing.
set -euo pipefail

HELM_VERSION="v3.22.0"
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion); helm assumes 1.20
# when it has no cluster to ask.
KUBE_VERSION="1.25.0"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
chart="$root/charts/pipedrive-gateway"

step() { printf '\n==> %s\n' "$*" >&2; }

if [[ -n "${HELM:-}" ]]; then
	helm="$HELM"
elif command -v helm >/dev/null 2>&1; then
	helm="$(command -v helm)"
else
	gobin="$(go env GOPATH)/bin"
	if [[ ! -x "$gobin/helm" ]]; then
		step "installing helm $HELM_VERSION into $gobin (go install; takes a few minutes)"
		GOBIN="$gobin" go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
	fi
	helm="$gobin/helm"
fi
export HELM="$helm"
step "using $("$helm" version --short 2>/dev/null || echo "$helm")"

shopt -s nullglob
values=("$chart"/ci/*.yaml)
if [[ ${#values[@]} -eq 0 ]]; then
	echo "no values files in $chart/ci" >&2
	exit 1
fi

for f in "${values[@]}"; do
	step "helm lint --strict -f ci/$(basename "$f")"
	"$helm" lint --strict --kube-version "$KUBE_VERSION" "$chart" --values "$f"
done

for f in "${values[@]}"; do
	step "helm template -f ci/$(basename "$f")"
	"$helm" template pipedrive-gateway "$chart" --namespace pipedrive-gateway --kube-version "$KUBE_VERSION" --values "$f" >/dev/null
done

step "go test ./... in charts/pipedrive-gateway/tests"
cd "$chart/tests"
go test -count=1 ./...

step "chart OK"
