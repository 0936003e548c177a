#!/usr/bin/env bash
# Runs generate.py with the message classes made from the .proto files (with-protos.sh says how).
exec "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/with-protos.sh" generate.py "$@"
