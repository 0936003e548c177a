#!/usr/bin/env bash
# The distributed topology as podman containers on one network, from the images of build.sh:
#   deploy/images/topology.sh up [DENOISERS]  text encoder, DENOISERS (default 2) denoisers, VAE, orchestrator;
#                                             the orchestrator published on 127.0.0.1:$SD_PORT (default 50050)
#                                             and its HTTP API and web page on 127.0.0.1:$SD_HTTP_PORT (8080)
#   deploy/images/topology.sh add-denoiser    one more denoiser under the same network alias: the orchestrator
#                                             finds it through DNS when its connections next end (max-connection-age)
#   deploy/images/topology.sh stop NAME       stops one container, e.g. sdserve-denoiser-1
#   deploy/images/topology.sh down            removes the containers and the network
# Then: ./sd health --target localhost:50050 --wait 120 && ./sd generate "a red circle" --target localhost:50050
# Discovery is DNS: podman's network resolves the alias "denoiser" to every denoiser container, and the
# orchestrator's target dns:///denoiser:50052 takes them all, round-robin with client-side health checks.
# The model is a host directory mounted read-only ($SD_MODEL_DIR, default models/sd-shapes-64; the VAE also mounts
# the feature extractor of Evaluate, $SD_EXTRACTOR_DIR, default models/scene-features); containers run
# as user 10001 with a read-only root and a /tmp tmpfs, as deploy/k8s runs them.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
source "$here/podman.sh"
p="${SD_TOPOLOGY:-sdserve}"
tag="${SD_IMAGE_TAG:-latest}"
model="$(cd "${SD_MODEL_DIR:-$root/models/sd-shapes-64}" && pwd)"
extractor="$(cd "${SD_EXTRACTOR_DIR:-$root/models/scene-features}" && pwd)"  # the VAE's, for Evaluate
age="${SD_MAX_CONNECTION_AGE:-PT30S}"  # short here, so that a scaled denoiser is picked up within a minute
jvm="${SD_JAVA_OPTS:--XX:+UseSerialGC -Xms32m -Xmx512m -XX:+ExitOnOutOfMemoryError}"

stage() { # name alias image prefix, extra args...
  local name=$1 alias=$2 image=$3 prefix=$4; shift 4
  pm run -d --name "$p-$name" --network "$p-net" --network-alias "$alias" --read-only --tmpfs /tmp \
    -v "$model:/models/sd-shapes-64:ro" -e JAVA_TOOL_OPTIONS="$jvm" \
    -e "${prefix}_MAX_CONNECTION_AGE=$age" "$@" "localhost/sdserve/$image:$tag" > /dev/null
  echo "topology: $p-$name ($alias)"
}

denoisers() { pm ps -a --filter "name=^$p-denoiser-" --format '{{.Names}}' | wc -l; }

case "${1:-}" in
  up)
    pm network exists "$p-net" || pm network create "$p-net" > /dev/null
    stage text-encoder text-encoder text-encoder SD_TEXT_ENCODER
    for i in $(seq 1 "${2:-2}"); do stage "denoiser-$i" denoiser denoiser SD_DENOISER; done
    stage vae vae vae SD_VAE -v "$extractor:/models/scene-features:ro" -e SD_VAE_EXTRACTOR_DIR=/models/scene-features
    # grpc-java's DNS resolver and the JVM cache a name's addresses for 30 s; 5 s lets a re-resolution see a new
    # replica soon after it starts
    pm run -d --name "$p-orchestrator" --network "$p-net" --read-only --tmpfs /tmp \
      -p "127.0.0.1:${SD_PORT:-50050}:50050" -p "127.0.0.1:${SD_HTTP_PORT:-8080}:8080" -e JAVA_TOOL_OPTIONS="$jvm -Dsun.net.inetaddr.ttl=5 -Dnetworkaddress.cache.ttl=5" \
      -e SD_ORCHESTRATOR_EMBEDDED=false \
      -e SD_ORCHESTRATOR_TEXT_ENCODER=dns:///text-encoder:50051 -e SD_ORCHESTRATOR_DENOISER=dns:///denoiser:50052 \
      -e SD_ORCHESTRATOR_VAE=dns:///vae:50053 "localhost/sdserve/orchestrator:$tag" > /dev/null
    echo "topology: $p-orchestrator on 127.0.0.1:${SD_PORT:-50050} (gRPC), http://127.0.0.1:${SD_HTTP_PORT:-8080}/ (web page, HTTP API)"
    ;;
  add-denoiser)
    stage "denoiser-$(( $(denoisers) + 1 ))" denoiser denoiser SD_DENOISER
    ;;
  stop)
    pm stop -t 10 "${2:?which container}" > /dev/null
    echo "topology: stopped $2"
    ;;
  down)
    pm ps -a --filter "name=^$p-" --format '{{.Names}}' | xargs -r podman --runtime "${SD_PODMAN_RUNTIME:-runc}" rm -f > /dev/null
    pm network exists "$p-net" && pm network rm "$p-net" > /dev/null
    echo "topology: $p removed"
    ;;
  *)
    sed -n '2,14p' "$0" >&2
    exit 2
    ;;
esac
