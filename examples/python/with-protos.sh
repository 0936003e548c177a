#!/usr/bin/env bash
# Runs one of this folder's clients (with-protos.sh SCRIPT.py ARGS...): makes the message classes from the
# repository's .proto files with Debian's protoc (3.21, which reads proto3 `optional`) into a temporary folder,
# then runs the client with Debian's Python (/usr/bin/python3, with python3-grpcio and python3-protobuf:
# apt-get install python3-grpcio python3-protobuf protobuf-compiler).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
script="${1:?which client, e.g. generate.py}"
shift
proto="${SD_PROTO:-$here/../../proto/src/main/proto}"
gen="$(mktemp -d)"
trap 'rm -rf "$gen"' EXIT
protoc -I "$proto" --python_out="$gen" "$proto"/sd/v1/*.proto
touch "$gen/sd/__init__.py" "$gen/sd/v1/__init__.py"
PYTHONPATH="$gen" /usr/bin/python3 "$here/$script" "$@"
