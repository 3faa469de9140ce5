"""Trains one OLMoE-mini checkpoint with one load-balancing strategy (nanoGPT-style).

Strategies (same data order, seed, steps and tokens; all with router z-loss
beta = 0.001 in the OLMoE normalisation, i.e. divided by top-k):
  micro      LBL (alpha 0.01) per micro-batch of one sequence (lbl.sequence)
  global     LBL (alpha 0.01) with f counted over the global batch, P per
             sequence (lbl.global with micro-batches of one sequence)
  loss-free  no LBL; expert bias, sign rule, u = 0.001 (Wang et al. 2024)
  none       no balancing (the collapse reference)
Every LBL is the specification's Switch form (f = slot fraction, balance 1),
averaged over layers (the MegaBlocks convention).

Resumable: state is saved every --save-every steps into --runs/<strategy>/ and a
rerun continues from there. Logs one JSON line per step.

usage: python3 data/recipe/train.py --strategy micro [--tokens 5000000] [--threads 1]
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import Config, OLMoEMini  # noqa: E402

# ---- configuration -----------------------------------------------------------
MODEL = dict(d_model=96, n_layers=3, n_heads=4, n_experts=64, top_k=8, expert_hidden=48, max_seq=256)
BATCH_SEQUENCES = 32
SEQUENCE = 256
LR, WARMUP, MIN_LR_FRACTION, WEIGHT_DECAY, CLIP = 2e-3, 50, 0.1, 0.1, 1.0
ALPHA, BETA, BIAS_RATE = 0.01, 0.001, 0.001
SEED = 1234
# -----------------------------------------------------------------------------


def lbl_terms(probs, chosen, E, k):
    """probs [B, S, E], chosen [B, S, k] of one layer -> (sequence LBL, global LBL, switch LBL, loads)."""
    B, S, _ = probs.shape
    counts = torch.zeros(B, E).scatter_add_(1, chosen.reshape(B, S * k), torch.ones(B, S * k))  # [B, E]
    f_seq = counts / (S * k)
    P_seq = probs.mean(1)  # [B, E]
    sequence = (E * (f_seq * P_seq).sum(-1)).mean()
    f_global = counts.sum(0) / (B * S * k)
    global_ = E * (f_global * P_seq.mean(0)).sum()
    return sequence, global_, counts


def max_vio(counts, tokens, k):
    mean = tokens * k / counts.shape[-1]
    return ((counts.max(-1).values - mean) / mean)


def schedule(step, total):
    if step < WARMUP:
        return LR * (step + 1) / WARMUP
    progress = (step - WARMUP) / max(1, total - WARMUP)
    return LR * (MIN_LR_FRACTION + (1 - MIN_LR_FRACTION) * 0.5 * (1 + math.cos(math.pi * progress)))


def batches(tokens, steps, seed):
    rng = np.random.default_rng(seed)
    limit = len(tokens) - SEQUENCE - 1
    for _ in range(steps):
        starts = rng.integers(0, limit, BATCH_SEQUENCES)
        yield np.stack([tokens[s:s + SEQUENCE + 1] for s in starts]).astype(np.int64)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--strategy", required=True, choices=["micro", "global", "loss-free", "none"])
    parser.add_argument("--tokens", type=int, default=5_000_000)
    parser.add_argument("--corpus", default="data/corpus")
    parser.add_argument("--runs", default=os.environ.get("MOE_LAB_RUNS", "data/runs"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--save-every", type=int, default=50)
    parser.add_argument("--vocab", type=int, default=None)
    parser.add_argument("--small", action="store_true", help="tiny model for the smoke test")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with open(os.path.join(args.corpus, "tokens.json")) as f:
        vocab = json.load(f)["vocabSize"]
    model_config = dict(MODEL, vocab_size=vocab)
    if args.small:
        model_config.update(d_model=32, n_layers=2, n_heads=2, n_experts=8, top_k=2, expert_hidden=16)
    config = Config(**model_config)
    E, k, L = config.n_experts, config.top_k, config.n_layers
    tokens = np.fromfile(os.path.join(args.corpus, "train.tokens.u16"), dtype="<u2")
    steps = math.ceil(args.tokens / (BATCH_SEQUENCES * SEQUENCE))

    run_dir = os.path.join(args.runs, args.strategy)
    os.makedirs(run_dir, exist_ok=True)
    state_path = os.path.join(run_dir, "state.pt")
    torch.manual_seed(SEED)
    model = OLMoEMini(config)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": WEIGHT_DECAY}, {"params": no_decay, "weight_decay": 0.0}], lr=LR, betas=(0.9, 0.95))
    start, elapsed = 0, 0.0
    if os.path.exists(state_path):
        state = torch.load(state_path)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start, elapsed = state["step"], state["elapsed"]
        print(f"resuming {args.strategy} at step {start}", file=sys.stderr)
    log_path = os.path.join(run_dir, "log.jsonl")
    if os.path.exists(log_path):
        # keep only the steps before the resumed state: a killed run may have logged past it
        with open(log_path) as f:
            kept = [line for line in f if line.strip() and json.loads(line)["step"] < start]
        with open(log_path, "w") as f:
            f.writelines(kept)
    log = open(log_path, "a")

    def save(step):
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step, "elapsed": elapsed, "config": config.to_dict(), "strategy": args.strategy, "steps": steps}, state_path + ".tmp")
        os.replace(state_path + ".tmp", state_path)

    for step, batch in enumerate(batches(tokens, steps, SEED)):
        if step < start:
            continue  # same data order on resume
        began = time.time()
        for group in optimizer.param_groups:
            group["lr"] = schedule(step, steps)
        x = torch.from_numpy(batch[:, :-1])
        y = torch.from_numpy(batch[:, 1:])
        logits, router, chosen = model(x)
        ce = F.cross_entropy(logits.reshape(-1, vocab), y.reshape(-1))
        probs = router.float().softmax(-1)  # [L, B, S, E]
        z_st_moe = (torch.logsumexp(router.float(), -1) ** 2).mean()
        z_olmoe = z_st_moe / k
        seq_terms, global_terms, counts = zip(*(lbl_terms(probs[l], chosen[l], E, k) for l in range(L)))
        lbl_sequence = torch.stack(seq_terms).mean()
        lbl_global = torch.stack(global_terms).mean()
        loss = ce + BETA * z_olmoe
        if args.strategy == "micro":
            loss = loss + ALPHA * lbl_sequence
        elif args.strategy == "global":
            loss = loss + ALPHA * lbl_global
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        optimizer.step()

        with torch.no_grad():
            counts = torch.stack(counts)  # [L, B, E]
            batch_load = counts.sum(1)  # [L, E]
            if args.strategy == "loss-free":
                mean_load = BATCH_SEQUENCES * SEQUENCE * k / E
                for l, block in enumerate(model.blocks):
                    block.moe.expert_bias += BIAS_RATE * torch.sign(mean_load - batch_load[l])
            switch = torch.stack([E * ((batch_load[l] / (BATCH_SEQUENCES * SEQUENCE * k)) * probs[l].mean((0, 1))).sum() for l in range(L)]).mean()
            record = {
                "step": step, "tokens": (step + 1) * BATCH_SEQUENCES * SEQUENCE, "lr": schedule(step, steps),
                "ce": ce.item(), "lbl_switch": switch.item(), "lbl_sequence": lbl_sequence.item(), "lbl_global": lbl_global.item(),
                "z_st_moe": z_st_moe.item(), "z_olmoe": z_olmoe.item(),
                "max_vio_global": max_vio(batch_load, BATCH_SEQUENCES * SEQUENCE, k).mean().item(),
                "max_vio_micro": max_vio(counts, SEQUENCE, k).mean().item(),
            }
            if step % 5 == 0 or step == steps - 1:
                record["load"] = batch_load.int().tolist()
        elapsed += time.time() - began
        record["elapsed_s"] = round(elapsed, 2)
        log.write(json.dumps(record) + "\n")
        log.flush()
        if step % 10 == 0:
            print(f"{args.strategy} step {step}/{steps} ce {record['ce']:.3f} lbl {record['lbl_switch']:.3f} maxvio {record['max_vio_global']:.2f} {BATCH_SEQUENCES * SEQUENCE * (step + 1 - start) / max(elapsed, 1e-9):.0f} tok/s", file=sys.stderr)
        if (step + 1) % args.save_every == 0 or step == steps - 1:
            save(step + 1)
    print(json.dumps({"strategy": args.strategy, "steps": steps, "elapsed_s": elapsed}))


if __name__ == "__main__":
    main()
