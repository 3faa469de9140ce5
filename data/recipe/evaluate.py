"""Held-out metrics of trained OLMoE-mini checkpoints, per domain, for the ablation page.

For each checkpoint: perplexity per domain (code, prose) against the unigram
baseline (token frequencies of the training split, add-one smoothed); MaxVio
per layer over the whole held-out set and per domain; loads per layer,
domain and expert; and domain specialisation as the mutual information
between a routing slot's domain and its expert, I(D; E) in bits per layer
(0: experts ignore the domain; at most H(D) ≤ 1 bit).

Held-out text is cut into non-overlapping windows of 256 tokens; a token's
domain is that of the document it came from. The summed negative log-likelihood
and token count of every held-out document are kept too (`per_document`), so
that the lab can bootstrap over documents for each run's own uncertainty; and
the router's held-out entropy, largest logit and logsumexp (what the z-loss acts on).

usage: python3 data/recipe/evaluate.py --runs RUNS --out data/metrics [run ids: micro global loss-free none micro.seed2 ...]
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import Config, OLMoEMini  # noqa: E402
import arms  # noqa: E402
import facts  # noqa: E402

DOMAINS = ("code", "prose")
WINDOW = facts.CONTEXT  # src/lib/model/olmoe-mini.json


def unigram_perplexity(corpus, vocab):
    train = np.fromfile(os.path.join(corpus, "train.tokens.u16"), dtype="<u2")
    counts = np.bincount(train, minlength=vocab).astype(np.float64) + 1
    logp = np.log(counts / counts.sum())
    held = np.fromfile(os.path.join(corpus, "heldout.tokens.u16"), dtype="<u2")
    dom = np.fromfile(os.path.join(corpus, "heldout.domains.u8"), dtype=np.uint8)
    return {name: float(np.exp(-logp[held[1:]][dom[1:] == d].mean())) for d, name in enumerate(DOMAINS)}


def mutual_information(joint):
    joint = joint / joint.sum()
    pd = joint.sum(1, keepdims=True)
    pe = joint.sum(0, keepdims=True)
    nz = joint > 0
    return float((joint[nz] * np.log2(joint[nz] / (pd @ pe)[nz])).sum())


def evaluate(state_path, corpus):
    state = torch.load(state_path)
    config = Config(**state["config"])
    model = OLMoEMini(config)
    model.load_state_dict(state["model"])
    model.eval()
    held = np.fromfile(os.path.join(corpus, "heldout.tokens.u16"), dtype="<u2").astype(np.int64)
    dom = np.fromfile(os.path.join(corpus, "heldout.domains.u8"), dtype=np.uint8)
    L, E, k = config.n_layers, config.n_experts, config.top_k
    nll = np.zeros(2)
    count = np.zeros(2)
    load = np.zeros((L, 2, E))
    # The tokenizer ends every document with end-of-text, its last id
    # (train-tokenizer.ts: endOfText = vocabSize - 1); a target token belongs to
    # the document of its position, the end-of-text to the document it ends.
    doc_of = np.concatenate([[0], np.cumsum(held == config.vocab_size - 1)[:-1]])
    documents = int(doc_of[-1]) + 1
    doc_nll = np.zeros(documents)
    doc_tokens = np.zeros(documents, dtype=np.int64)
    doc_domain = np.zeros(documents, dtype=np.int64)
    doc_domain[doc_of] = dom
    entropy_sum, logit_max, lse_all = 0.0, -math.inf, []
    starts = range(0, len(held) - WINDOW - 1, WINDOW)
    with torch.no_grad():
        for batch in np.array_split(np.array(list(starts)), max(1, len(starts) // 16)):
            x = torch.from_numpy(np.stack([held[s:s + WINDOW] for s in batch]))
            y = torch.from_numpy(np.stack([held[s + 1:s + WINDOW + 1] for s in batch]))
            d_in = np.stack([dom[s:s + WINDOW] for s in batch])
            d_out = np.stack([dom[s + 1:s + WINDOW + 1] for s in batch])
            logits, router, chosen = model(x)
            losses = F.cross_entropy(logits.reshape(-1, config.vocab_size), y.reshape(-1), reduction="none").numpy()
            target_doc = np.stack([doc_of[s + 1:s + WINDOW + 1] for s in batch]).reshape(-1)
            np.add.at(doc_nll, target_doc, losses)
            np.add.at(doc_tokens, target_doc, 1)
            router = router.float()
            probs = router.softmax(-1)
            entropy_sum += float(-(probs * torch.log(probs.clamp_min(1e-30))).sum(-1).sum())
            logit_max = max(logit_max, float(router.max()))
            lse_all.append(torch.logsumexp(router, -1).reshape(-1).numpy())
            for d in range(2):
                mask = d_out.reshape(-1) == d
                nll[d] += losses[mask].sum()
                count[d] += mask.sum()
            ch = chosen.numpy()  # [L, B, S, k]
            for d in range(2):
                mask = d_in == d
                for l in range(L):
                    load[l, d] += np.bincount(ch[l][mask].reshape(-1), minlength=E)
    tokens_per_domain = load[0].sum(1) / k
    mean_all = load.sum(1).sum(1, keepdims=True) / E
    max_vio = ((load.sum(1).max(1, keepdims=True) - mean_all) / mean_all).ravel()
    max_vio_domain = {name: (((load[:, d].max(1) - load[:, d].mean(1)) / load[:, d].mean(1))).tolist() for d, name in enumerate(DOMAINS)}
    lse_all = np.concatenate(lse_all)
    arm = state.get("arm") or arms.shipped(state["strategy"])
    kept = doc_tokens > 0
    return {
        "arm": arm["arm"], "seed": arm["seed"], "arm_config": arm, "run": arms.run_id(arm),
        "device": state.get("device", "cpu"), "torch_seed": state.get("torch_seed", arms.torch_seed(arm)),
        "strategy": state["strategy"], "steps": state["step"], "config": state["config"],
        "training_tokens": state["step"] * arms.BATCH_SEQUENCES * WINDOW, "training_seconds": state["elapsed"],
        "heldout_tokens": {name: int(count[d]) for d, name in enumerate(DOMAINS)},
        "perplexity": {name: float(math.exp(nll[d] / count[d])) for d, name in enumerate(DOMAINS)},
        "max_vio": {"per_layer": max_vio.tolist(), "mean": float(max_vio.mean()), "per_domain": max_vio_domain},
        "dead_experts_per_layer": (load.sum(1) == 0).sum(1).tolist(),
        "specialisation_bits": {"per_layer": [mutual_information(load[l]) for l in range(L)], "mean": float(np.mean([mutual_information(load[l]) for l in range(L)]))},
        "domain_token_share": (tokens_per_domain / tokens_per_domain.sum()).tolist(),
        "load_by_domain": load.astype(int).tolist(),
        "router": {
            "entropy_mean": entropy_sum / len(lse_all), "logit_max": logit_max,
            "lse_mean": float(lse_all.mean()), "lse_p99": float(np.quantile(lse_all, 0.99)), "lse_sq_mean": float((lse_all ** 2).mean()),
        },
        # summed NLL (nats) and token count per held-out document, its domain (0 code, 1 prose)
        "per_document": {
            "nll": [round(float(v), 4) for v in doc_nll[kept]],
            "tokens": doc_tokens[kept].tolist(),
            "domain": doc_domain[kept].tolist(),
        },
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", default=os.environ.get("MOE_LAB_RUNS", "data/runs"))
    parser.add_argument("--corpus", default="data/corpus")
    parser.add_argument("--out", default="data/metrics")
    parser.add_argument("--threads", type=int, default=max(1, os.cpu_count() or 1))
    parser.add_argument("strategies", nargs="*", default=list(facts.CHECKPOINTS), help="run ids")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    summary = {}
    for strategy in args.strategies:
        path = os.path.join(args.runs, strategy, "state.pt")
        if not os.path.exists(path):
            print(f"{strategy}: no checkpoint at {path}", file=sys.stderr)
            continue
        metrics = evaluate(path, args.corpus)
        vocab = metrics["config"]["vocab_size"]
        metrics["unigram_perplexity"] = unigram_perplexity(args.corpus, vocab)
        target = os.path.join(args.out, f"{strategy}.json")
        with open(target + ".tmp", "w") as f:
            json.dump(metrics, f)
        os.replace(target + ".tmp", target)
        summary[strategy] = {"perplexity": metrics["perplexity"], "unigram": metrics["unigram_perplexity"], "max_vio": metrics["max_vio"]["mean"], "bits": metrics["specialisation_bits"]["mean"], "steps": metrics["steps"]}
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
