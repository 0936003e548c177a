#!/usr/bin/env bash
# Builds the OCI images with podman, from Debian packages only (no registry is needed):
#   ./mvnw -DskipTests package && deploy/images/build.sh
# Images (tag $SD_IMAGE_TAG, default latest):
#   localhost/sdserve/base:bookworm-jre17   debootstrap'ed Debian bookworm (minbase) + openjdk-17-jre-headless, user 10001
#   localhost/sdserve/{text-encoder,denoiser,vae,orchestrator}   each service's Quarkus app at /app, non-root
#                                           (the orchestrator without ONNX Runtime: it runs no model)
#   localhost/sdserve/orchestrator-embedded the orchestrator with the three stages in its process (no model inside)
#   localhost/sdserve/demo-model            the demo model at /model (an init container copies it to a volume)
#   localhost/sdserve/demo                  the orchestrator in embedded mode with the demo model inside
# Needs root (debootstrap), podman, runc and debootstrap: apt-get install -y podman runc debootstrap.
# The base is built once (about a minute) and reused; SD_REBUILD_BASE=1 rebuilds it.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
source "$here/podman.sh"
tag="${SD_IMAGE_TAG:-latest}"
base=localhost/sdserve/base:bookworm-jre17
mirror="${SD_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

for module in text-encoder-svc denoiser-svc vae-svc orchestrator orchestrator-embedded; do
  if [ ! -f "$root/$module/target/quarkus-app/quarkus-run.jar" ]; then
    echo "build.sh: $module is not packaged; run ./mvnw -DskipTests package first" >&2
    exit 2
  fi
done

if [ "${SD_REBUILD_BASE:-0}" = 1 ] || ! pm image exists "$base"; then
  start=$(date +%s)
  rootfs="$(mktemp -d /var/tmp/sdserve-rootfs.XXXXXX)"
  trap 'rm -rf "$rootfs"' EXIT
  echo "build.sh: debootstrap bookworm + openjdk-17-jre-headless into $rootfs"
  debootstrap --variant=minbase --include=openjdk-17-jre-headless bookworm "$rootfs" "$mirror" > "$rootfs.log" 2>&1 \
    || { tail -20 "$rootfs.log" >&2; exit 1; }
  chroot "$rootfs" groupadd --gid 10001 sdserve
  chroot "$rootfs" useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin sdserve
  chroot "$rootfs" apt-get clean
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/var/log/* \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/*
  tar --numeric-owner -C "$rootfs" -c . | pm import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' --change 'CMD ["/bin/sh"]' - "$base" > /dev/null
  rm -f "$rootfs.log"
  echo "build.sh: $base in $(( $(date +%s) - start )) s"
fi

build() { # name, containerfile, context, build args...
  local name=$1 file=$2 context=$3; shift 3
  local start=$(date +%s)
  pm build --quiet --isolation chroot -f "$here/$file" --build-arg BASE="$base" "$@" \
    -t "localhost/sdserve/$name:$tag" "$context" > /dev/null
  echo "build.sh: localhost/sdserve/$name:$tag in $(( $(date +%s) - start )) s"
}
build text-encoder Containerfile.service "$root/text-encoder-svc/target/quarkus-app" --build-arg PORT=50051
build denoiser Containerfile.service "$root/denoiser-svc/target/quarkus-app" --build-arg PORT=50052
build vae Containerfile.service "$root/vae-svc/target/quarkus-app" --build-arg PORT=50053
build orchestrator Containerfile.service "$root/orchestrator/target/quarkus-app" --build-arg PORT=50050
build orchestrator-embedded Containerfile.service "$root/orchestrator-embedded/target/quarkus-app" --build-arg PORT=50050
build demo-model Containerfile.demo-model "$root/models"
build demo Containerfile.demo "$root/models" --build-arg EMBEDDED="localhost/sdserve/orchestrator-embedded:$tag"
pm images --filter reference='localhost/sdserve/*' --format '{{.Repository}}:{{.Tag}} {{.Size}}'
