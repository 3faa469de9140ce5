#!/usr/bin/env bash
# Remakes OLMoE-mini from scratch: corpus, tokenizer, the four checkpoints,
# their ONNX exports, held-out metrics and training logs. Resumable: rerun it
# after an interruption and training continues where it stopped.
# Needs: apt-get install python3-torch python3-onnx libopenblas0-pthread fortunes python3.11-doc
# Time on 2 CPU cores: a few minutes for data, then roughly 40–60 minutes per checkpoint.
set -euo pipefail
cd "$(dirname "$0")/../.."
export MOE_LAB_RUNS="${MOE_LAB_RUNS:-data/runs}"

/usr/bin/python3 data/recipe/corpus.py
node --import tsx data/recipe/tokenize.ts --vocab 4096
data/recipe/train-all.sh
bash data/recipe/publish.sh
