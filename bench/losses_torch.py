"""The loss engine's work in PyTorch on one CPU thread, for `npm run bench`.

Reads router logits [L, T, E] (float32 .npy) and computes every variant of the
spec the way a PyTorch user would: softmax, logsumexp, top-k and a scatter for
the loads, then per-sequence sums and the reductions. Prints one JSON line
with the best time in milliseconds and the values, which the bench compares
with the TypeScript engine's.

usage: python3 losses_torch.py LOGITS.npy TOP_K SEQUENCES MICRO_BATCH REPEATS
       python3 losses_torch.py LOGITS.npy TOP_K SEQUENCES MICRO_BATCH serve
With `serve` it reads the logits once, prints {"ready": ...} and then, for every
line "run" on standard input, runs once and prints {"ms": ...}: the bench
interleaves these runs with the TypeScript engine's, so both see the same
machine load.
"""
import json
import sys
import time

import numpy as np
import torch

torch.set_num_threads(1)


def all_losses(x, k, sequences, m):
    L, T, E = x.shape
    p = torch.softmax(x, dim=-1)
    lse = torch.logsumexp(x, dim=-1)
    chosen = torch.topk(p, k, dim=-1).indices
    mask = torch.zeros_like(p).scatter_(-1, chosen, 1.0)
    seq = T // sequences
    # per (layer, sequence) sums, accumulated in float64 as the TypeScript engine does
    prob_sum = p.view(L, sequences, seq, E).sum(2, dtype=torch.float64)
    load = mask.view(L, sequences, seq, E).sum(2, dtype=torch.float64)
    lse_sq = (lse.double() ** 2).view(L, sequences, seq).sum(2)

    def switch(ps, c, tokens):  # [L, G, E] sums over groups of `tokens` tokens
        return (E * (c / (tokens * k)) * (ps / tokens)).sum(-1)

    whole = switch(prob_sum.sum(1), load.sum(1), T).mean()
    per_seq = switch(prob_sum, load, seq).mean()
    groups = sequences // m
    mb_p = prob_sum.view(L, groups, m, E).sum(2)
    mb_c = load.view(L, groups, m, E).sum(2)
    micro = switch(mb_p, mb_c, seq * m).mean()
    f_global = load.sum(1) / (T * k)
    glob = (E * f_global * (mb_p / (seq * m)).mean(1)).sum(-1).mean()
    f_tok = load.sum((0, 1)) / (L * T)
    hf = E * (f_tok * prob_sum.sum((0, 1)) / (L * T)).sum()
    z = lse_sq.sum() / (L * T)
    imp = prob_sum.sum(1)
    cv2_imp = (imp.var(-1, unbiased=False) / imp.mean(-1) ** 2).mean()
    c_all = load.sum(1)
    cv2_load = (c_all.var(-1, unbiased=False) / c_all.mean(-1) ** 2).mean()
    mean_load = T * k / E
    vio_g = ((c_all.max(-1).values - mean_load) / mean_load).mean()
    mean_mb = seq * m * k / E
    vio_mb = ((mb_c.max(-1).values - mean_mb) / mean_mb).mean()
    return {
        "lbl": {"switch": whole.item(), "hf": hf.item(), "sequence": per_seq.item(), "micro_batch": micro.item(), "global": glob.item()},
        "z_loss": {"st_moe": z.item(), "olmoe": z.item() / k},
        "cv2": {"importance": cv2_imp.item(), "load": cv2_load.item()},
        "max_vio": {"global": vio_g.item(), "micro_batch": vio_mb.item()},
    }


def serve(x, k, sequences, m):
    values = all_losses(x, k, sequences, m)  # warm-up, and the values the bench compares
    print(json.dumps({"ready": True, "values": values, "torch": torch.__version__, "threads": torch.get_num_threads()}), flush=True)
    for line in sys.stdin:
        if line.strip() != "run":
            break
        start = time.perf_counter()
        all_losses(x, k, sequences, m)
        print(json.dumps({"ms": (time.perf_counter() - start) * 1000}), flush=True)


def main():
    path = sys.argv[1]
    k, sequences, m = map(int, sys.argv[2:5])
    x = torch.from_numpy(np.load(path))
    if sys.argv[5] == "serve":
        return serve(x, k, sequences, m)
    repeats = int(sys.argv[5])
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        values = all_losses(x, k, sequences, m)
        times.append((time.perf_counter() - start) * 1000)
    print(json.dumps({"best_ms": min(times), "median_ms": sorted(times)[len(times) // 2], "values": values, "torch": torch.__version__, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
