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

Route overrides, three more inputs (no_override gives the values that change
nothing; they broadcast): forced_experts [layers, batch|1, seq|1, k] int64 (an
expert per slot, -1 the router's own choice; the gate stays the router's
probability of the expert used), router_input_noise [layers, batch|1, seq|1, d]
added to each router's input, router_bf16 (a scalar; nonzero rounds each
router's input to bfloat16). They are required inputs: onnxruntime's JavaScript
bindings neither list nor accept an initializer that doubles as an input, the
ONNX way to give an input a default. The router-only graph (router_only.py)
bakes the no-override values in and keeps input_ids alone. The reference gains
PyTorch's outputs under four overrides ("overrides").

usage: python3 data/recipe/export.py --state RUNS/micro/state.pt --out data/models/micro.onnx [--fp16]
       python3 data/recipe/export.py --from-onnx data/models/micro.onnx --out data/models/micro.onnx --fp16
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

    def forward(self, input_ids, forced_experts, router_input_noise, router_bf16):
        logits, router, _ = self.model(input_ids, forced_experts, router_input_noise, router_bf16)
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


def load_from_onnx(onnx_path):
    """A shipped graph's module and its reference (whose trained-module outputs are kept)."""
    from from_onnx import module_from_onnx
    reference = json.load(open(onnx_path.replace(".onnx", ".reference.json")))
    return module_from_onnx(onnx_path, reference["config"]), reference


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
            graph.initializer.append(numpy_helper.from_array(scale[None, :], name + "__scale"))
            # Cast and Mul, not DequantizeLinear: onnxruntime-node (optimisation
            # level "extended" and up) fuses DequantizeLinear -> MatMul into a
            # matmul that also quantises the activations to 8 bits, 0.05 off
            # in the logits; onnxruntime-web does not fuse it. Cast + Mul of
            # two initializers is constant-folded into the exact float32
            # weights at load in every runtime.
            decoders.append(helper.make_node("Cast", [name + "__int8"], [name + "__float"], to=TensorProto.FLOAT, name="cast_" + name))
            decoders.append(helper.make_node("Mul", [name + "__float", name + "__scale"], [name], name="scale_" + name))
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


OVERRIDES = ("forced_experts", "router_input_noise", "router_bf16")


def no_override(config):
    """The inputs that change nothing: every slot the router's own, no noise, float32.

    Shaped [L, 1, 1, *]: they broadcast over any batch and sequence, so a
    caller that overrides nothing sends a few hundred bytes."""
    L, k, d = config.n_layers, config.top_k, config.d_model
    return (
        torch.full((L, 1, 1, k), -1, dtype=torch.int64),
        torch.zeros(L, 1, 1, d),
        torch.zeros(()),
    )


def check_bfloat16_rounding(model, ids):
    """model.round_to_bfloat16 equals torch's own bfloat16 cast on every router input."""
    from model import round_to_bfloat16
    inputs = []
    hooks = [block.moe.router.register_forward_hook(lambda m, i, o: inputs.append(i[0])) for block in model.blocks]
    with torch.no_grad():
        model(ids)
    for hook in hooks:
        hook.remove()
    for x in inputs:
        if not torch.equal(round_to_bfloat16(x), x.to(torch.bfloat16).float()):
            raise AssertionError("round_to_bfloat16 differs from torch's bfloat16 cast")


def hashed_noise(shape, scale):
    """scale * (2u - 1), u = (i * 2654435761 mod 2^32) / 2^32 for the flat index i.

    Not random, but with no pattern a router could follow, and a test in any
    language rebuilds it from the index (test/model/overrides.test.ts)."""
    count = int(np.prod(shape))
    u = (np.arange(count, dtype=np.uint64) * np.uint64(2654435761) % np.uint64(2**32)).astype(np.float64) / 2**32
    return torch.from_numpy((scale * (2 * u - 1)).astype(np.float32).reshape(shape))


def forced_reference(model, ids, seed=0):
    """PyTorch's outputs under three overrides, for the parity tests in Node.

    swap: one slot of one token in the middle layer gets the router's 9th
    choice (what the counterfactual panel does); random: every token of the
    second sequence in the first layer gets k distinct random experts; bf16:
    the router inputs rounded to bfloat16; noise: a perturbation of 1e-3 per
    coordinate on every router input. Outputs: next-token log-probabilities at
    every position and the last layer's router logits (layers after a forced
    one see its effect).
    """
    config = model.config
    L, k, E, d = config.n_layers, config.top_k, config.n_experts, config.d_model
    B, S = ids.shape
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        _, router, chosen = model(ids)
    ranked = (router.softmax(-1) + torch.stack([b.moe.expert_bias for b in model.blocks])[:, None, None, :]).argsort(-1, descending=True)
    swap = torch.full((L, B, S, k), -1, dtype=torch.int64)
    layer, token = L // 2, S // 2
    swap[layer, 0, token, k - 1] = ranked[layer, 0, token, k]
    random = torch.full((L, B, S, k), -1, dtype=torch.int64)
    random[0, 1] = torch.stack([torch.randperm(E, generator=generator)[:k] for _ in range(S)])
    noise = hashed_noise((L, B, S, d), 1e-3)
    cases = {
        "swap": dict(forced_experts=swap),
        "random": dict(forced_experts=random),
        "bf16": dict(router_bf16=torch.ones(())),
        "noise": dict(router_input_noise=noise),
    }
    out = {}
    for name, override in cases.items():
        with torch.no_grad():
            logits, router, chosen = model(ids, **override)
        log_probs = logits.log_softmax(-1)[:, :-1].gather(-1, ids[:, 1:, None]).squeeze(-1)
        entry = {
            "next_token_log_probs": log_probs.numpy().astype(float).round(6).tolist(),
            "last_router_logits": router[-1].numpy().astype(float).round(6).tolist(),
            "chosen": chosen.tolist(),
        }
        if "forced_experts" in override:
            entry["forced_experts"] = override["forced_experts"].tolist()
        if "router_input_noise" in override:
            entry["router_input_noise"] = {"shape": [L, B, S, d], "scale": 1e-3, "rule": "hashed_noise"}
        out[name] = entry
    return out


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
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--state", help="a training state (train.py's state.pt)")
    source.add_argument("--from-onnx", help="a shipped graph: re-export its weights (their stored precision) with today's inputs")
    parser.add_argument("--out", required=True)
    parser.add_argument("--corpus", default="data/corpus")
    parser.add_argument("--fp16", action="store_true")
    parser.add_argument("--reference-length", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    if args.state:
        model, state = load(args.state)
        ids, names = reference_inputs(args.corpus, 2, args.reference_length)
        kept = None
    else:
        # the reference's trained-module outputs stay: they are what the
        # parity tests compare every runtime with
        model, kept = load_from_onnx(args.from_onnx)
        state = {"strategy": kept["strategy"], "config": kept["config"], "step": kept["steps"]}
        ids, names = np.array(kept["input_ids"], dtype=np.int64), kept["domains"]
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    example = torch.from_numpy(ids)
    # The reference comes from the training path, so the parity tests compare
    # the ONNX graph with what was trained, not with the exported formulation.
    model.set_moe_path("grouped")
    check_bfloat16_rounding(model, example)
    with torch.no_grad():
        logits, router, bias = Exported(model)(example, *no_override(model.config))
        forced = forced_reference(model, example)
    model.set_moe_path("buffered")
    L, B, S = model.config.n_layers, *ids.shape
    traced_overrides = (torch.full((L, B, S, model.config.top_k), -1, dtype=torch.int64), torch.zeros(L, B, S, model.config.d_model), torch.zeros(()))
    torch.onnx.export(
        Exported(model), (example, *traced_overrides), args.out, opset_version=17,
        input_names=["input_ids", *OVERRIDES], output_names=["logits", "router_logits", "expert_bias"],
        dynamic_axes={
            "input_ids": {0: "batch", 1: "seq"},
            "forced_experts": {1: "batch_or_1", 2: "seq_or_1"},
            "router_input_noise": {1: "batch_or_1", 2: "seq_or_1"},
            "logits": {0: "batch", 1: "seq"}, "router_logits": {1: "batch", 2: "seq"},
        },
    )
    name_constant_output(args.out, "expert_bias")
    if args.fp16:
        to_reduced_storage(args.out, model.config)
    if kept is not None:
        reference = dict(kept)
    else:
        reference = {
            "strategy": state["strategy"], "config": state["config"], "steps": state["step"], "precision": "reduced" if args.fp16 else "fp32",
            "input_ids": ids.tolist(), "domains": names,
            "router_logits": router.numpy().astype(float).round(7).tolist(),
            "expert_bias": bias.numpy().astype(float).tolist(),
            "logits_first_rows": logits[:, :4].numpy().astype(float).round(6).tolist(),
        }
    # under overrides, PyTorch runs the weights the graph holds (rebuilt from
    # a graph, or the trained state for a fresh export)
    reference["overrides"] = {"weights": "the graph's" if kept is not None else "the trained state", "cases": forced}
    with open(args.out.replace(".onnx", ".reference.json"), "w") as f:
        json.dump(reference, f)
    print(json.dumps({"onnx": args.out, "bytes": os.path.getsize(args.out), "precision": reference["precision"]}))


if __name__ == "__main__":
    main()
