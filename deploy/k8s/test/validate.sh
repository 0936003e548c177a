#!/usr/bin/env bash
# Renders deploy/k8s/base and every overlay with `kubectl kustomize` and validates each object offline and strictly:
# against the Kubernetes API types (unknown fields, wrong types and missing required fields fail), the KEDA
# ScaledObject type in keda-types.d.ts, and sdserve's policy (validate.mjs). Then runs the self-test: mutated
# copies of the cpu-keda render must be rejected. No cluster is needed or contacted.
#   deploy/k8s/test/validate.sh
# Needs: kubectl (with its built-in kustomize), node >= 18 and npm; installs the pinned npm packages of
# package.json into deploy/k8s/test/node_modules on first use.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
k8s="$(dirname "$here")"
for tool in kubectl node npm; do
    command -v "$tool" >/dev/null || { echo "validate.sh: $tool is not installed" >&2; exit 2; }
done
if [[ ! -f "$here/node_modules/typescript/package.json" || ! -f "$here/node_modules/kubernetes-types/package.json" \
      || ! -f "$here/node_modules/yaml/package.json" ]]; then
    (cd "$here" && npm install --no-audit --no-fund --no-package-lock --loglevel=error >&2)
fi
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
sets=()
render() { # name dir
    if ! kubectl kustomize "$2" > "$out/$1.yaml" 2> "$out/$1.err"; then
        echo "FAIL render $1: kubectl kustomize $2"; cat "$out/$1.err"; exit 1
    fi
    sets+=("$1=$out/$1.yaml")
}
render base "$k8s/base"
for dir in "$k8s"/overlays/*/; do
    render "$(basename "$dir")" "$dir"
done
node "$here/validate.mjs" --self-test cpu-keda "${sets[@]}"
