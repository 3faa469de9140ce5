"""Trains one OLMoE-mini checkpoint with one training arm (nanoGPT-style).

The shipped strategies (same data order, seed, steps and tokens; all with router
z-loss beta = 0.001 in the OLMoE normalisation, i.e. divided by top-k):
  micro      LBL (alpha 0.01) per micro-batch of one sequence (lbl.sequence)
  global     LBL (alpha 0.01) with f counted over the global batch, P per
             sequence (lbl.global with micro-batches of one sequence)
  loss-free  no LBL; expert bias, sign rule, u = 0.001 (Wang et al. 2024)
  none       no balancing (the collapse reference)
Any other arm (data/recipe/arms.py: alpha, sequences per f group, beta and the
z-loss normalisation, bias rule and rate, seed) comes in with --arm-config.
Every LBL is the specification's Switch form (f = slot fraction, balance 1),
averaged over layers (the MegaBlocks convention).

Resumable: state is saved every --save-every steps into --runs/<run id>/ and a
rerun continues from there; a run folder belongs to one arm (arm.json) and a
rerun with another config is refused. Logs one JSON line per step.

usage: python3 data/recipe/train.py --strategy micro [--seed 2] [--tokens 5000000] [--threads 1]
       python3 data/recipe/train.py --arm-config arm.json
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
import arms  # noqa: E402
import facts  # noqa: E402

# ---- configuration -----------------------------------------------------------
MODEL = facts.ARCHITECTURE  # src/lib/model/olmoe-mini.json
BATCH_SEQUENCES = facts.BATCH_SEQUENCES
SEQUENCE = facts.CONTEXT
LR, WARMUP, MIN_LR_FRACTION, WEIGHT_DECAY, CLIP = 2e-3, 50, 0.1, 0.1, 1.0
# -----------------------------------------------------------------------------


def lbl_terms(probs, chosen, E, k, group):
    """probs [B, S, E], chosen [B, S, k] of one layer -> (sequence LBL, global LBL, grouped LBL, counts [B, E]).

    The grouped LBL counts f over `group` consecutive sequences and takes P per
    sequence: group 1 is the sequence LBL, group B the global one.
    """
    B, S, _ = probs.shape
    counts = torch.zeros(B, E, device=probs.device).scatter_add_(1, chosen.reshape(B, S * k), torch.ones(B, S * k, device=probs.device))  # [B, E]
    f_seq = counts / (S * k)
    P_seq = probs.mean(1)  # [B, E]
    sequence = (E * (f_seq * P_seq).sum(-1)).mean()
    f_global = counts.sum(0) / (B * S * k)
    global_ = E * (f_global * P_seq.mean(0)).sum()
    f_group = (counts.view(B // group, group, E).sum(1) / (group * S * k)).repeat_interleave(group, 0)  # [B, E]
    grouped = (E * (f_group * P_seq).sum(-1)).mean()
    return sequence, global_, grouped, counts


def router_statistics(router, probs):
    """What the z-loss acts on: mean router entropy (nats), the largest router logit, lse percentiles."""
    lse = torch.logsumexp(router, -1).reshape(-1)
    entropy = -(probs * torch.log(probs.clamp_min(1e-30))).sum(-1).mean()
    q = torch.quantile(lse, torch.tensor([0.5, 0.9, 0.99], dtype=lse.dtype, device=lse.device))
    return {"router_entropy": entropy.item(), "router_logit_max": router.max().item(), "lse_p50": q[0].item(), "lse_p90": q[1].item(), "lse_p99": q[2].item(), "lse_max": lse.max().item()}


def bias_update(bias, batch_load, mean_load, arm):
    """The loss-free controller's step for one layer (arms.py defines the rules)."""
    rule, u = arm["bias_rule"], arm["bias_rate"]
    if rule == "proportional":
        delta = u * (mean_load - batch_load) / mean_load
    else:
        delta = u * torch.sign(mean_load - batch_load)
        if rule == "sign-recentred":
            delta = delta - delta.mean()
    bias += delta


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


def arm_from_args(args):
    if args.arm_config:
        if args.strategy or args.seed is not None:
            raise arms.ArmError("give either --arm-config or --strategy/--seed, not both")
        return arms.load(args.arm_config)
    if not args.strategy:
        raise arms.ArmError("give --strategy or --arm-config")
    return arms.shipped(args.strategy, seed=args.seed or 1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--strategy", choices=list(arms.STRATEGIES))
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--arm-config", help="a JSON file with one arm (data/recipe/arms.py)")
    parser.add_argument("--tokens", type=int, default=5_000_000)
    parser.add_argument("--corpus", default="data/corpus")
    parser.add_argument("--runs", default=os.environ.get("MOE_LAB_RUNS", "data/runs"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda where one exists)")
    parser.add_argument("--save-every", type=int, default=50)
    parser.add_argument("--stop-after", type=int, default=None, help="save and stop after this many steps of this call, as an interruption would (a rerun continues)")
    parser.add_argument("--small", action="store_true", help="tiny model for the smoke test")
    args = parser.parse_args()
    try:
        arm = arm_from_args(args)
    except (arms.ArmError, OSError, json.JSONDecodeError) as error:
        sys.exit(f"train.py: {error}")
    torch.set_num_threads(args.threads)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))

    with open(os.path.join(args.corpus, "tokens.json")) as f:
        vocab = json.load(f)["vocabSize"]
    model_config = dict(MODEL, vocab_size=vocab)
    if args.small:
        model_config.update(d_model=32, n_layers=2, n_heads=2, n_experts=8, top_k=2, expert_hidden=16)
    config = Config(**model_config)
    E, k, L = config.n_experts, config.top_k, config.n_layers
    tokens = np.fromfile(os.path.join(args.corpus, "train.tokens.u16"), dtype="<u2")
    steps = math.ceil(args.tokens / (BATCH_SEQUENCES * SEQUENCE))

    name = arms.run_id(arm)
    run_dir = os.path.join(args.runs, name)
    os.makedirs(run_dir, exist_ok=True)
    arm_path = os.path.join(run_dir, "arm.json")
    state_path = os.path.join(run_dir, "state.pt")
    if os.path.exists(arm_path):
        try:
            recorded = arms.load(arm_path)
        except (arms.ArmError, json.JSONDecodeError) as error:
            sys.exit(f"train.py: {name}: {arm_path} is unreadable ({error}); move the folder away to start this arm again")
        if not arms.same(recorded, arm):
            sys.exit(f"train.py: {name}: {run_dir} holds another arm's run ({json.dumps(recorded)}); refusing to mix them")
    elif os.path.exists(state_path):
        try:
            recorded_strategy = torch.load(state_path, map_location="cpu").get("strategy")
        except Exception as error:  # a truncated or foreign file: say so, never start over silently
            sys.exit(f"train.py: {name}: cannot resume from {state_path} ({type(error).__name__}: {error}); move it away to train this arm from step 0")
        if arm["seed"] != 1 or recorded_strategy != arm["arm"] or not arms.same(arm, arms.shipped(arm["arm"])):
            sys.exit(f"train.py: {name}: {run_dir} holds a run without arm.json that is not this arm's; refusing to mix them")
    with open(arm_path + ".tmp", "w") as f:
        json.dump(arm, f)
    os.replace(arm_path + ".tmp", arm_path)

    seed = arms.torch_seed(arm)
    torch.manual_seed(seed)
    model = OLMoEMini(config).to(device)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": WEIGHT_DECAY}, {"params": no_decay, "weight_decay": 0.0}], lr=LR, betas=(0.9, 0.95))
    start, elapsed = 0, 0.0
    if os.path.exists(state_path):
        try:
            state = torch.load(state_path, map_location=device)
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            start, elapsed = state["step"], state["elapsed"]
        except Exception as error:  # a truncated or foreign file: say so, never start over silently
            sys.exit(f"train.py: {name}: cannot resume from {state_path} ({type(error).__name__}: {error}); move it away to train this arm from step 0")
        if state.get("steps", steps) != steps:
            sys.exit(f"train.py: {name}: the saved run has {state.get('steps')} steps, this call asks for {steps}")
        print(f"resuming {name} at step {start}", file=sys.stderr)
    log_path = os.path.join(run_dir, "log.jsonl")
    if os.path.exists(log_path):
        # keep only the steps before the resumed state: a killed run may have
        # logged past it, or died in the middle of a line
        kept = []
        with open(log_path) as f:
            for line in f:
                try:
                    if line.strip() and json.loads(line)["step"] < start:
                        kept.append(line if line.endswith("\n") else line + "\n")
                except (json.JSONDecodeError, KeyError, TypeError):
                    pass
        with open(log_path, "w") as f:
            f.writelines(kept)
    log = open(log_path, "a")

    def save(step):
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step, "elapsed": elapsed, "config": config.to_dict(), "strategy": arms.strategy_of(arm), "arm": arm, "steps": steps, "device": device.type, "torch_seed": seed}, state_path + ".tmp")
        os.replace(state_path + ".tmp", state_path)

    mean_load = BATCH_SEQUENCES * SEQUENCE * k / E
    for step, batch in enumerate(batches(tokens, steps, seed)):
        if step < start:
            continue  # same data order on resume
        began = time.time()
        for group in optimizer.param_groups:
            group["lr"] = schedule(step, steps)
        x = torch.from_numpy(batch[:, :-1]).to(device)
        y = torch.from_numpy(batch[:, 1:]).to(device)
        logits, router, chosen = model(x)
        ce = F.cross_entropy(logits.reshape(-1, vocab), y.reshape(-1))
        router = router.float()
        probs = router.softmax(-1)  # [L, B, S, E]
        z_st_moe = (torch.logsumexp(router, -1) ** 2).mean()
        z_olmoe = z_st_moe / k
        seq_terms, global_terms, group_terms, counts = zip(*(lbl_terms(probs[l], chosen[l], E, k, arm["group"]) for l in range(L)))
        lbl_sequence = torch.stack(seq_terms).mean()
        lbl_global = torch.stack(global_terms).mean()
        lbl_group = torch.stack(group_terms).mean()
        loss = ce
        if arm["beta"]:
            loss = loss + arm["beta"] * (z_olmoe if arm["z_norm"] == "olmoe" else z_st_moe)
        if arm["alpha"]:
            loss = loss + arm["alpha"] * lbl_group
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        optimizer.step()

        with torch.no_grad():
            counts = torch.stack(counts)  # [L, B, E]
            batch_load = counts.sum(1)  # [L, E]
            if arm["bias_rule"]:
                for l, block in enumerate(model.blocks):
                    bias_update(block.moe.expert_bias, batch_load[l], mean_load, arm)
            switch = torch.stack([E * ((batch_load[l] / (BATCH_SEQUENCES * SEQUENCE * k)) * probs[l].mean((0, 1))).sum() for l in range(L)]).mean()
            bias = torch.stack([block.moe.expert_bias for block in model.blocks]).abs()
            record = {
                "step": step, "tokens": (step + 1) * BATCH_SEQUENCES * SEQUENCE, "lr": schedule(step, steps),
                "ce": ce.item(), "lbl_switch": switch.item(), "lbl_sequence": lbl_sequence.item(), "lbl_global": lbl_global.item(),
                "z_st_moe": z_st_moe.item(), "z_olmoe": z_olmoe.item(),
                "max_vio_global": max_vio(batch_load, BATCH_SEQUENCES * SEQUENCE, k).mean().item(),
                "max_vio_micro": max_vio(counts, SEQUENCE, k).mean().item(),
                # tokens per expert: population sd of the batch's slot counts, mean over layers
                "load_sd": batch_load.std(-1, unbiased=False).mean().item(),
                **router_statistics(router.detach(), probs.detach()),
                "bias_abs_mean": bias.mean().item(), "bias_abs_max": bias.max().item(),
            }
            if arm["group"] not in (1, BATCH_SEQUENCES):
                record["lbl_group"] = lbl_group.item()
            if step % 5 == 0 or step == steps - 1:
                record["load"] = batch_load.int().tolist()
        elapsed += time.time() - began
        record["elapsed_s"] = round(elapsed, 2)
        log.write(json.dumps(record) + "\n")
        log.flush()
        if step % 10 == 0:
            print(f"{name} step {step}/{steps} ce {record['ce']:.3f} lbl {record['lbl_switch']:.3f} maxvio {record['max_vio_global']:.2f} {BATCH_SEQUENCES * SEQUENCE * (step + 1 - start) / max(elapsed, 1e-9):.0f} tok/s", file=sys.stderr)
        if (step + 1) % args.save_every == 0 or step == steps - 1:
            save(step + 1)
        if args.stop_after is not None and step + 1 - start >= args.stop_after and step + 1 < steps:
            save(step + 1)
            print(f"{name}: stopped after step {step + 1} of {steps} (--stop-after); rerun to continue", file=sys.stderr)
            return
    print(json.dumps({"arm": arm["arm"], "seed": arm["seed"], "run": name, "steps": steps, "elapsed_s": elapsed, "device": device.type}))


if __name__ == "__main__":
    main()
