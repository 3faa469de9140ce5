"""Exports a trained OLMoE-mini checkpoint to ONNX and saves PyTorch reference outputs.

The graph uses the buffered MoE path (slots copied into per-expert buffers cut
to the busiest expert's count, one batched matmul, results gathered back):
torch 1.13's exporter silently drops index_add's accumulation, which the
training path relies on (model.py explains; check_paths.py proves the two paths
agree). It replaced a dense form (every expert on every token) that did 8x the
expert FLOPs: onnxruntime-web's WASM forward pass in Chromium went from ~200 to
~80 ms for 255 tokens. Inputs: input_ids
[batch, seq] (int64); outputs: logits [batch, seq, vocab], router_logits
[layers, batch, seq, experts] and expert_bias [layers, experts] (the loss-free
selection bias, added to the softmax only to choose; zeros for the other
strategies), batch and seq dynamic.

With --fp16 most weights are stored as float16 and cast to float32 inside the
graph (Cast nodes after each initializer), the LM head as int8 with a
DequantizeLinear: about half the file, float32 arithmetic on every backend
(WebGPU's fp16 needs shader-f16, which many adapters lack). See
to_reduced_storage for which tensor gets which precision, and why.

Also writes <out>.reference.json: input ids of held-out text per domain and
the PyTorch float32 outputs (router logits in full, logits for the first rows)
for the parity tests in Node.

usage: python3 data/recipe/export.py --state RUNS/micro/state.pt --out data/models/micro.onnx [--fp16]
"""
import argparse
import json
import os
import sys

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper, TensorProto

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import Config, OLMoEMini  # noqa: E402


class Exported(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids):
        logits, router, _ = self.model(input_ids)
        # The loss-free checkpoint chooses experts by softmax + bias, so the
        # page needs the bias to reproduce its routing (zeros for the others).
        bias = torch.stack([block.moe.expert_bias for block in self.model.blocks])
        return logits, router, bias


def load(state_path):
    state = torch.load(state_path)
    model = OLMoEMini(Config(**state["config"]))
    model.load_state_dict(state["model"])
    model.eval()
    return model, state


# Storage precision by tensor, measured on the trained micro checkpoint
# (max |Δ router logits| against float32, 4 held-out sequences of 64 tokens):
# every large tensor in float16: 0.12, nearly all of it from the token
# embedding; the embedding kept in float32 and the rest in float16: 4.6e-4.
# The LM head (which never touches the router) is stored as int8 with one
# scale per vocabulary column, which keeps the file under 8 MB.
KEEP_FP32_BELOW = 10_000


def to_reduced_storage(path, config):
    graph_model = onnx.load(path)
    graph = graph_model.graph
    decoders = []
    for init in graph.initializer:
        count = int(np.prod(init.dims))
        if init.data_type != TensorProto.FLOAT or count < KEEP_FP32_BELOW or init.name == "model.embed.weight":
            continue
        values = numpy_helper.to_array(init)
        name = init.name
        if list(init.dims) == [config.d_model, config.vocab_size]:  # the LM head, transposed for MatMul
            scale = np.maximum(np.abs(values).max(axis=0), 1e-12).astype(np.float32) / 127.0
            quantised = np.clip(np.round(values / scale), -127, 127).astype(np.int8)
            init.CopyFrom(numpy_helper.from_array(quantised, name + "__int8"))
            graph.initializer.append(numpy_helper.from_array(scale, name + "__scale"))
            graph.initializer.append(numpy_helper.from_array(np.zeros(config.vocab_size, dtype=np.int8), name + "__zero"))
            decoders.append(helper.make_node("DequantizeLinear", [name + "__int8", name + "__scale", name + "__zero"], [name], axis=1, name="dequantize_" + name))
        else:
            init.CopyFrom(numpy_helper.from_array(values.astype(np.float16), name + "__fp16"))
            decoders.append(helper.make_node("Cast", [name + "__fp16"], [name], to=TensorProto.FLOAT, name="cast_" + name))
    for node in reversed(decoders):
        graph.node.insert(0, node)
    onnx.checker.check_model(graph_model)
    onnx.save(graph_model, path)


def name_constant_output(path, name):
    # torch 1.13's exporter ignores output_names for an output that is a
    # constant (it stays an initializer with a number for a name): route it
    # through an Identity node with the name the runtimes look for.
    graph_model = onnx.load(path)
    output = graph_model.graph.output[-1]
    if output.name != name:
        graph_model.graph.node.append(helper.make_node("Identity", [output.name], [name], name="name_" + name))
        output.name = name
        onnx.checker.check_model(graph_model)
        onnx.save(graph_model, path)


def reference_inputs(corpus, count_per_domain, length):
    tokens = np.fromfile(os.path.join(corpus, "heldout.tokens.u16"), dtype="<u2")
    domains = np.fromfile(os.path.join(corpus, "heldout.domains.u8"), dtype=np.uint8)
    rows, names = [], []
    windows = np.arange(0, len(tokens) - length, length)
    for domain, name in ((0, "code"), (1, "prose")):
        pure = [s for s in windows if (domains[s:s + length] == domain).all()]
        for s in pure[:: max(1, len(pure) // count_per_domain)][:count_per_domain]:
            rows.append(tokens[s:s + length].astype(np.int64))
            names.append(name)
    return np.stack(rows), names


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--state", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--corpus", default="data/corpus")
    parser.add_argument("--fp16", action="store_true")
    parser.add_argument("--reference-length", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    model, state = load(args.state)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    ids, names = reference_inputs(args.corpus, 2, args.reference_length)
    example = torch.from_numpy(ids)
    # The reference comes from the training path, so the parity tests compare
    # the ONNX graph with what was trained, not with the exported formulation.
    model.set_moe_path("grouped")
    with torch.no_grad():
        logits, router, bias = Exported(model)(example)
    model.set_moe_path("buffered")
    torch.onnx.export(
        Exported(model), (example,), args.out, opset_version=17,
        input_names=["input_ids"], output_names=["logits", "router_logits", "expert_bias"],
        dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "logits": {0: "batch", 1: "seq"}, "router_logits": {1: "batch", 2: "seq"}},
    )
    name_constant_output(args.out, "expert_bias")
    if args.fp16:
        to_reduced_storage(args.out, model.config)
    reference = {
        "strategy": state["strategy"], "config": state["config"], "steps": state["step"], "precision": "reduced" if args.fp16 else "fp32",
        "input_ids": ids.tolist(), "domains": names,
        "router_logits": router.numpy().astype(float).round(7).tolist(),
        "expert_bias": bias.numpy().astype(float).tolist(),
        "logits_first_rows": logits[:, :4].numpy().astype(float).round(6).tolist(),
    }
    with open(args.out.replace(".onnx", ".reference.json"), "w") as f:
        json.dump(reference, f)
    print(json.dumps({"onnx": args.out, "bytes": os.path.getsize(args.out), "precision": reference["precision"]}))


if __name__ == "__main__":
    main()
