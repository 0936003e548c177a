#!/usr/bin/env bash
# The whole benchmark in one command (about 10 minutes on 2 cores): builds, generates the random-weight bench
# model, times the PyTorch eager sampler, runs every mode on the demo model and the bench model, and writes
# docs/benchmarks.md.      bench/run.sh [RUNS]
# Needs Debian's python3-torch and python3-onnx for the bench model and the PyTorch rows (apt-get install).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
runs="${1:-10}"
threads="$(nproc)"
./mvnw -q -DskipTests install
/usr/bin/python3 tools/bench-model/make_bench_model.py --out target/bench-model 2>/dev/null
rm -f target/torch-demo.json target/torch-bench.json
if [ -d tools/demo-model/work ]; then  # the demo model's PyTorch weights exist only where it was trained
  /usr/bin/python3 tools/bench-model/bench_torch.py --weights demo --threads "$threads" --runs "$runs" > target/torch-demo.json
fi
/usr/bin/python3 tools/bench-model/bench_torch.py --weights target/bench-model.pt --threads "$threads" --runs "$runs" \
  > target/torch-bench.json
cp="bench/target/bench-0.1.0-SNAPSHOT.jar:bench/target/lib/*"
java -Djava.util.logging.manager=org.jboss.logmanager.LogManager -cp "$cp" org.sdserve.bench.Bench --model models/sd-shapes-64 --label "Demo model (sd-shapes-64)" \
  --runs "$runs" --torch target/torch-demo.json --root . --out target/bench-demo.md > /dev/null
java -Djava.util.logging.manager=org.jboss.logmanager.LogManager -cp "$cp" org.sdserve.bench.Bench --model target/bench-model --label "Bench model (random weights, UNet 384/768)" \
  --runs "$runs" --torch target/torch-bench.json --root . --out target/bench-bench.md > /dev/null
{
  echo "# Benchmarks"
  echo
  echo "Measured by \`bench/run.sh $runs\` on $(date -u +%Y-%m-%d): $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)),"
  echo "$(free -g | awk '/Mem:/ {print $2}') GiB, $(java -version 2>&1 | head -1), ONNX Runtime 1.23.2 CPU, one ONNX Runtime pool of $threads threads per process,"
  echo "PyTorch with $threads threads. Every mode runs the same graphs, DDIM steps and guidance; see bench/src/main/java/org/sdserve/bench/Bench.java."
  echo
  cat target/bench-demo.md target/bench-bench.md
  cat bench/NOTES.md
} > docs/benchmarks.md
cat docs/benchmarks.md
