"""Prints the model card's results table from data/metrics/*.json (markdown)."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import facts  # noqa: E402

rows = ["| checkpoint | held-out ppl code | ppl prose | unigram code / prose | MaxVio (held-out, mean of layers) | dead experts | I(domain; expert), bits | training time |", "|---|---|---|---|---|---|---|---|"]
for strategy in facts.CHECKPOINTS:
    path = f"data/metrics/{strategy}.json"
    if not os.path.exists(path):
        rows.append(f"| `{strategy}` | not trained yet | | | | | | |")
        continue
    m = json.load(open(path))
    rows.append(
        f"| `{strategy}` | {m['perplexity']['code']:.1f} | {m['perplexity']['prose']:.1f} | {m['unigram_perplexity']['code']:.0f} / {m['unigram_perplexity']['prose']:.0f} "
        f"| {m['max_vio']['mean']:.3f} | {sum(m['dead_experts_per_layer'])} | {m['specialisation_bits']['mean']:.3f} | {m['training_seconds'] / 60:.0f} min, {m['training_tokens'] / 1e6:.2f} M tokens |"
    )
print("\n".join(rows))
