"""The training recipe's logged quantities for given router logits, as JSON.

Reads {"router_logits": [L][B][S][E], "top_k": k, "group": g} on stdin and prints
what train.py logs for such a batch, computed by train.py's own functions:
lbl_sequence, lbl_global, lbl_group, lbl_switch, z_st_moe, z_olmoe,
max_vio_global, max_vio_micro, router_entropy, router_logit_max. The lab's
tests compare these with the TypeScript library on the same logits.
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train import lbl_terms, max_vio, router_statistics  # noqa: E402


def main():
    data = json.load(sys.stdin)
    router = torch.tensor(data["router_logits"], dtype=torch.float64)  # [L, B, S, E]
    k, group = data["top_k"], data["group"]
    L, B, S, E = router.shape
    probs = router.softmax(-1)
    # the model chooses top-k of the probabilities (ties to the lower index, as torch.topk does here)
    chosen = torch.topk(probs, k, dim=-1).indices
    seq_terms, global_terms, group_terms, counts = zip(*(lbl_terms(probs[l], chosen[l], E, k, group) for l in range(L)))
    counts = torch.stack(counts)
    batch_load = counts.sum(1)
    switch = torch.stack([E * ((batch_load[l] / (B * S * k)) * probs[l].mean((0, 1))).sum() for l in range(L)]).mean()
    z_st_moe = (torch.logsumexp(router, -1) ** 2).mean()
    out = {
        "lbl_sequence": torch.stack(seq_terms).mean().item(), "lbl_global": torch.stack(global_terms).mean().item(),
        "lbl_group": torch.stack(group_terms).mean().item(), "lbl_switch": switch.item(),
        "z_st_moe": z_st_moe.item(), "z_olmoe": (z_st_moe / k).item(),
        "max_vio_global": max_vio(batch_load, B * S, k).mean().item(), "max_vio_micro": max_vio(counts, S, k).mean().item(),
        **router_statistics(router, probs),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
