"""Rebuilds the PyTorch OLMoE-mini module from an exported graph's weights.

The four shipped checkpoints' training states are not in the repository (each
is ~30 MB with its optimiser); their weights are, inside data/models/*.onnx,
stored as export.py's to_reduced_storage left them (float16 for the large
tensors, the LM head as int8 with one scale per column, the rest float32).
This decodes them back to float32 and loads them into model.py's module, so
that PyTorch can run what the site runs: the re-export with route overrides
(export.py --from-onnx) and the forced-route parity tests.

The exporter names most Linear weights after their MatMul ("onnx::MatMul_1118",
transposed), numbered in the order the trace met them; the numbers shift with
the exported outputs, the order does not. Which parameter comes in which place
is learnt by exporting a fresh module of the same config with distinct random
weights and matching values. A wrong match cannot pass unnoticed: the rebuilt
module must reproduce the graph's outputs (checked where it is used).

usage (a check): python3 data/recipe/from_onnx.py data/models/micro.onnx
"""
import io
import json
import os
import sys

import numpy as np
import onnx
import torch
from onnx import numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import Config, OLMoEMini  # noqa: E402


def decoded_initializers(graph_model):
    """name -> float32 array, with float16 storage and the int8 LM head decoded."""
    raw = {t.name: numpy_helper.to_array(t) for t in graph_model.graph.initializer}
    out = {}
    for name, values in raw.items():
        if name.endswith("__fp16"):
            out[name[: -len("__fp16")]] = values.astype(np.float32)
        elif name.endswith("__int8"):
            # one scale per column; a zero point only in graphs that decoded
            # with DequantizeLinear (before the Cast + Mul decode)
            base = name[: -len("__int8")]
            zero = raw[base + "__zero"].astype(np.float32) if base + "__zero" in raw else 0.0
            out[base] = (values.astype(np.float32) - zero) * raw[base + "__scale"].reshape(1, -1)
        elif name.endswith("__scale") or name.endswith("__zero"):
            continue
        else:
            out[name] = values
    return out


def matmul_number(name):
    return int(name.rsplit("_", 1)[1])


def matmul_order(config):
    """The parameters behind an export's 'onnx::MatMul_*' initializers, in the trace's order."""
    torch.manual_seed(0)
    fresh = OLMoEMini(config).eval()
    fresh.set_moe_path("buffered")

    class InputIdsOnly(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids):
            logits, router, _ = self.model(input_ids)
            return logits, router

    buffer = io.BytesIO()
    example = torch.zeros(1, 8, dtype=torch.int64)
    torch.onnx.export(InputIdsOnly(fresh), (example,), buffer, opset_version=17, input_names=["input_ids"],
                      dynamic_axes={"input_ids": {0: "batch", 1: "seq"}})
    exported = decoded_initializers(onnx.load_from_string(buffer.getvalue()))
    params = dict(fresh.named_parameters())
    names = []
    for name in sorted((n for n in exported if n.startswith("onnx::MatMul")), key=matmul_number):
        values = exported[name]
        matches = [p for p, t in params.items() if t.dim() == 2 and tuple(t.shape[::-1]) == values.shape
                   and np.array_equal(t.detach().numpy().T, values)]
        if len(matches) != 1:
            raise ValueError(f"{name}: {len(matches)} parameters match")
        names.append(matches[0])
    return names


def module_from_onnx(path, config_dict):
    """The module whose weights are the graph's (decoded to float32), in eval mode."""
    config = Config(**config_dict)
    model = OLMoEMini(config).eval()
    graph_model = onnx.load(path)
    weights = decoded_initializers(graph_model)
    shipped = sorted((n for n in weights if n.startswith("onnx::MatMul")), key=matmul_number)
    order = matmul_order(config)
    if len(shipped) != len(order):
        raise ValueError(f"{path}: {len(shipped)} MatMul weights, a fresh export has {len(order)}")
    renamed = dict(zip(shipped, order))
    state = {}
    for name, values in weights.items():
        if name in renamed:
            state[renamed[name]] = torch.from_numpy(np.ascontiguousarray(values.T))
        elif name.startswith("model."):
            state[name[len("model."):]] = torch.from_numpy(np.array(values))
    # The exporter keeps one copy of equal constants (the zero biases of a
    # strategy without one share a name), so every layer's bias is read from
    # the constant behind the expert_bias output [L, E] instead.
    bias = stacked_bias(graph_model, weights)
    for layer in range(config.n_layers):
        state[f"blocks.{layer}.moe.expert_bias"] = torch.from_numpy(np.array(bias[layer]))
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    if missing or extra:
        raise ValueError(f"{path}: missing {missing}, unexpected {extra}")
    model.load_state_dict(state)
    return model


def stacked_bias(graph_model, weights):
    """The expert_bias output's value [L, E]: the constant its Identity node reads."""
    for node in graph_model.graph.node:
        if node.op_type == "Identity" and list(node.output) == ["expert_bias"]:
            return weights[node.input[0]]
    raise ValueError("the graph has no expert_bias output")


if __name__ == "__main__":
    path = sys.argv[1]
    reference = json.load(open(path.replace(".onnx", ".reference.json")))
    model = module_from_onnx(path, reference["config"])
    ids = torch.tensor(reference["input_ids"])
    with torch.no_grad():
        logits, router, _ = model(ids)
    router_difference = (router - torch.tensor(reference["router_logits"])).abs().max().item()
    print(json.dumps({"onnx": path, "max |Δ router logits| vs the trained module": router_difference}))
