#!/usr/bin/env bash
# Runs the four services as separate processes on this machine (distributed mode), in the foreground.
#   deploy/run-distributed.sh [MODEL_DIR]        then: ./sd generate "a red circle on a blue background" --target localhost:50050
# Ports: text-encoder 50051, denoiser 50052 (and 50054, a second replica), vae 50053, orchestrator 50050 (HTTP
# 8080); metrics and health on 9051, 9052 (9054), 9053, 9050.
# Build first: ./mvnw -DskipTests install. Stop with Ctrl-C (all four stop).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
model="$(cd "${1:-$root/models/sd-shapes-64}" && pwd)"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait' EXIT INT TERM
jvm="${SD_JAVA_OPTS:--XX:+UseSerialGC -Xms32m -Xmx512m}"  # small bounded heaps: a stage keeps little alive
run() { local module=$1; shift; env "$@" java $jvm -jar "$root/$module/target/quarkus-app/quarkus-run.jar" & pids+=($!); }
run text-encoder-svc SD_TEXT_ENCODER_MODEL_DIR="$model" SD_TEXT_ENCODER_PORT=50051
run denoiser-svc SD_DENOISER_MODEL_DIR="$model" SD_DENOISER_PORT=50052
run denoiser-svc SD_DENOISER_MODEL_DIR="$model" SD_DENOISER_PORT=50054 SD_DENOISER_MANAGEMENT_PORT=9054
run vae-svc SD_VAE_MODEL_DIR="$model" SD_VAE_PORT=50053
run orchestrator SD_ORCHESTRATOR_EMBEDDED=false SD_ORCHESTRATOR_PORT=50050 \
    SD_ORCHESTRATOR_TEXT_ENCODER=localhost:50051 SD_ORCHESTRATOR_DENOISER=localhost:50052,localhost:50054 \
    SD_ORCHESTRATOR_VAE=localhost:50053
wait
