#!/usr/bin/env bash
# Runs evaluate.py with the message classes made from the .proto files (with-protos.sh says how).
exec "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/with-protos.sh" evaluate.py "$@"
