"""PyTorch CPU eager forward time of an OLMoE-mini checkpoint on one 256-token input.

usage: python3 model_torch.py CHECKPOINT IDS_JSON REPEATS THREADS
CHECKPOINT is a training state (state.pt) or a shipped graph (.onnx), whose
weights data/recipe/from_onnx.py loads into the module: the bench needs no
training state, and times exactly the weights the other rows run.
Prints {"grouped": {"median_ms", "best_ms"}, "buffered": {...}, "threads", "weights"} as JSON.
"""
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "recipe"))
from model import Config, OLMoEMini  # noqa: E402
from from_onnx import module_from_onnx  # noqa: E402

checkpoint, ids_json, repeats, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(threads)
if checkpoint.endswith(".onnx"):
    reference = json.load(open(checkpoint.replace(".onnx", ".reference.json")))
    model = module_from_onnx(checkpoint, reference["config"])
    weights = "rebuilt from " + os.path.basename(checkpoint)
else:
    state = torch.load(checkpoint)
    model = OLMoEMini(Config(**state["config"]))
    model.load_state_dict(state["model"])
    weights = "training state"
model.eval()
ids = torch.tensor([json.loads(ids_json)], dtype=torch.long)
result = {"threads": threads, "weights": weights}
for path in ("grouped", "buffered"):
    model.set_moe_path(path)
    times = []
    with torch.no_grad():
        model(ids)
        for _ in range(repeats):
            start = time.perf_counter()
            model(ids)
            times.append((time.perf_counter() - start) * 1000)
    times.sort()
    result[path] = {"median_ms": times[len(times) // 2], "best_ms": times[0]}
print(json.dumps(result))
