# Sourced by the image scripts: podman as it runs on these machines (../shared/docs/stack.md): the runc runtime,
# and a containers.conf that asks for no ulimits (the sandbox refuses to raise them). Harmless elsewhere.
conf="${TMPDIR:-/tmp}/sdserve-containers.conf"
printf '[containers]\ndefault_ulimits = []\n' > "$conf"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$conf}"
pm() { podman --runtime "${SD_PODMAN_RUNTIME:-runc}" "$@"; }
