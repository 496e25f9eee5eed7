#!/usr/bin/env bash
# A latency table for your own models on this device: `edgecnn benchmark` on each file, on the
# CPU with 1, 2 and 4 threads, one row per run. CPU only: the Pi's GPU has no Vulkan driver that
# LiteRT's GPU accelerator is known to work with (`edgecnn benchmark --accelerator auto` tries it).
#
#   bash benchmark.sh MODEL.tflite [MODEL.tflite ...]
#   EDGECNN=~/edgecnn-venv/bin/edgecnn RUNS=50 THREADS="1 2 4" bash benchmark.sh models/*.tflite
set -euo pipefail
edgecnn="${EDGECNN:-$HOME/edgecnn-venv/bin/edgecnn}"
[ -x "$edgecnn" ] || edgecnn="$(command -v edgecnn || true)"
[ -n "$edgecnn" ] || { echo "benchmark.sh: edgecnn not found: set EDGECNN or run install.sh" >&2; exit 1; }
[ "$#" -gt 0 ] || { echo "usage: bash benchmark.sh MODEL.tflite [MODEL.tflite ...]" >&2; exit 2; }
python="$(dirname "$edgecnn")/python"
[ -x "$python" ] || python=python3
runs="${RUNS:-50}"
threads="${THREADS:-1 2 4}"
printf "%-32s %-12s %8s %8s %8s %12s\n" model accelerator threads p50_ms p90_ms pipeline_p50
for model in "$@"; do
  for n in $threads; do
    "$edgecnn" benchmark "$model" --accelerator cpu --threads "$n" --runs "$runs" --json \
      | "$python" -c '
import json, sys
r = json.load(sys.stdin)
invoke, pipeline = r["invoke_ms"], r.get("pipeline_ms") or {}
print("%-32s %-12s %8s %8.3f %8.3f %12s" % (sys.argv[1].rsplit("/", 1)[-1][:32], r["accelerator"], sys.argv[2], invoke["p50"],
      invoke["p90"], "%.3f" % pipeline["p50"] if pipeline else "-"))' "$model" "$n"
  done
done
