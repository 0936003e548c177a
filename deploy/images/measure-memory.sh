#!/usr/bin/env bash
# Memory per replica against image size, for docs/deploy.md: the topology with one denoiser, one generation per
# size (4 steps, guidance on), then each container's memory as podman reports it (the cgroup's usage).
#   deploy/images/measure-memory.sh [SIZES]    (default "64 256 512 1024"; images from build.sh)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
source "$here/podman.sh"
export SD_TOPOLOGY=sdserve-mem SD_PORT="${SD_PORT:-50290}"
trap '"$here/topology.sh" down > /dev/null 2>&1 || true' EXIT
"$here/topology.sh" down > /dev/null 2>&1 || true
"$here/topology.sh" up 1 > /dev/null
"$root/sd" health --target "127.0.0.1:$SD_PORT" --wait 180 2> /dev/null
mem() { pm stats --no-stream --format '{{.Name}} {{.MemUsage}}' | awk -v n="$SD_TOPOLOGY-$1" '$1 == n {print $2}'; }
echo "| image | text-encoder | denoiser | vae | orchestrator |"
echo "|---|---|---|---|---|"
echo "| idle | $(mem text-encoder) | $(mem denoiser-1) | $(mem vae) | $(mem orchestrator) |"
for size in ${1:-64 256 512 1024}; do
  "$root/sd" generate "a red circle on a blue background" --seed 1 --steps 4 --width "$size" --height "$size" \
    --target "127.0.0.1:$SD_PORT" -o "${TMPDIR:-/tmp}/sdserve-mem.png" > /dev/null 2>&1
  echo "| ${size}x${size} | $(mem text-encoder) | $(mem denoiser-1) | $(mem vae) | $(mem orchestrator) |"
done
