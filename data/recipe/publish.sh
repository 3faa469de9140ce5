#!/usr/bin/env bash
# Exports every finished checkpoint to data/models (float16 weights), measures
# held-out metrics into data/metrics and copies the training logs to data/logs.
# A checkpoint whose run has not reached its last step is left out.
set -euo pipefail
cd "$(dirname "$0")/../.."
runs="${MOE_LAB_RUNS:-data/runs}"
mkdir -p data/models data/metrics data/logs
finished=()
for strategy in micro global loss-free none; do
  state="$runs/$strategy/state.pt"
  [ -f "$state" ] || continue
  if /usr/bin/python3 -c "import sys, torch; s = torch.load(sys.argv[1]); sys.exit(0 if s['step'] >= s['steps'] else 1)" "$state"; then
    finished+=("$strategy")
    /usr/bin/python3 data/recipe/export.py --state "$state" --out "data/models/$strategy.onnx" --fp16
    # the graph the pages load: the same nodes up to the last router
    /usr/bin/python3 data/recipe/router_only.py "data/models/$strategy.onnx"
    # one line per step, the last write of each step kept (a resumed run may have logged a step twice)
    /usr/bin/python3 - "$runs/$strategy/log.jsonl" "data/logs/$strategy.jsonl" <<'PY'
import json, sys
steps = {}
for line in open(sys.argv[1]):
    if line.strip():
        record = json.loads(line)
        steps[record["step"]] = record
with open(sys.argv[2], "w") as out:
    for step in sorted(steps):
        out.write(json.dumps(steps[step]) + "\n")
PY
  else
    echo "$strategy: not finished, left out" >&2
  fi
done
[ ${#finished[@]} -eq 0 ] || /usr/bin/python3 data/recipe/evaluate.py --runs "$runs" --out data/metrics "${finished[@]}"
