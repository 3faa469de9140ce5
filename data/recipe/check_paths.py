"""Checks that OLMoE-mini's two MoE paths compute the same function.

The training path (grouped: sorted slots, index_add) and the exported path
(buffered: per-expert buffers cut to the busiest expert's count) must agree
whatever the routing. Checked on a random model (balanced-ish routing) and on
the same model with the expert bias forcing every token onto the same k
experts (collapse: one buffer as long as the whole input), for a batch and a
single token. Prints the largest differences as JSON; exits 1 above 1e-5.

usage: python3 data/recipe/check_paths.py
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import Config, OLMoEMini  # noqa: E402

TOLERANCE = 1e-5


def largest_difference(model, ids):
    outputs = {}
    with torch.no_grad():
        for path in ("grouped", "buffered"):
            model.set_moe_path(path)
            outputs[path] = model(ids)
    (logits_g, router_g, chosen_g), (logits_b, router_b, chosen_b) = outputs["grouped"], outputs["buffered"]
    assert torch.equal(chosen_g, chosen_b), "the two paths chose different experts"
    return max((logits_g - logits_b).abs().max().item(), (router_g - router_b).abs().max().item())


def main():
    torch.manual_seed(0)
    config = Config(vocab_size=300, d_model=32, n_layers=2, n_heads=2, n_experts=16, top_k=4, expert_hidden=24, max_seq=64)
    model = OLMoEMini(config).eval()
    batch = torch.randint(0, config.vocab_size, (3, 40))
    single = torch.randint(0, config.vocab_size, (1, 1))
    report = {"balanced": largest_difference(model, batch), "single token": largest_difference(model, single)}
    for block in model.blocks:
        block.moe.expert_bias[:] = 0
        block.moe.expert_bias[: config.top_k] = 10.0  # every token picks experts 0..k-1
    report["collapsed"] = largest_difference(model, batch)
    print(json.dumps(report))
    sys.exit(0 if max(report.values()) <= TOLERANCE else 1)


if __name__ == "__main__":
    main()
