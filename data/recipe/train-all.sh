#!/usr/bin/env bash
# Trains the four checkpoints one after another, each on every core (on the
# 2-core machine here one two-threaded run made ~3,500 tokens/s, two
# single-threaded runs ~1,250 each). Resumable: rerun it and every run
# continues from its last saved step; finished runs are skipped.
set -euo pipefail
cd "$(dirname "$0")/../.."
export MOE_LAB_RUNS="${MOE_LAB_RUNS:-data/runs}"
tokens="${TOKENS:-5000000}"
threads="${THREADS:-$(nproc)}"
mkdir -p "$MOE_LAB_RUNS"
for strategy in micro global loss-free none; do
  /usr/bin/python3 data/recipe/train.py --strategy "$strategy" --tokens "$tokens" --threads "$threads" \
    >>"$MOE_LAB_RUNS/$strategy.out" 2>>"$MOE_LAB_RUNS/$strategy.err"
done
