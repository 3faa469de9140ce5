"""Dump the router logits of a Hugging Face MoE model (Mixtral, OLMoE, Qwen-MoE, DeepSeek-V3, ...).

usage: python huggingface.py MODEL_ID_OR_PATH TEXT_FILE [OUT.safetensors]
Writes one [batch*seq, experts] tensor per MoE layer (layer.0, layer.1, ...) with
top_k and sequence_lengths in the metadata: drop the file on the lab's
"Your router logits" page or run `npx moe-lab losses OUT.safetensors`.

Models whose router keeps an expert bias (DeepSeek-V3's
`mlp.gate.e_score_correction_bias`) have it written too, under its own name:
the lab routes the file with it (selection only). Give the lab the router's
convention as well, e.g. `--preset deepseek-v3`.
"""
import sys

import torch
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, AutoTokenizer

model_id, text_file = sys.argv[1], sys.argv[2]
out = sys.argv[3] if len(sys.argv) > 3 else "router_logits.safetensors"
tokenizer = AutoTokenizer.from_pretrained(model_id)
model = AutoModelForCausalLM.from_pretrained(model_id, torch_dtype=torch.bfloat16)
model.eval()
texts = [t for t in open(text_file).read().split("\n\n") if t.strip()][:8]
batch = tokenizer(texts, return_tensors="pt", padding=True, truncation=True, max_length=512)

# Routers that carry a bias (DeepSeek-V3's gate) return top-k indices, not logits:
# hook them and recompute the logits from their input and weight, before the score function.
biased_gates = [(name, m) for name, m in model.named_modules() if hasattr(m, "e_score_correction_bias")]
hooked = []
handles = [
    gate.register_forward_hook(
        lambda module, inputs, output: hooked.append(
            torch.nn.functional.linear(inputs[0].reshape(-1, inputs[0].shape[-1]).float(), module.weight.float())
        )
    )
    for _, gate in biased_gates
]
with torch.no_grad():
    output = model(**batch, output_router_logits=not biased_gates)
for handle in handles:
    handle.remove()
router_logits = hooked if biased_gates else output.router_logits

# Keep real tokens only: padding would count as routed tokens.
mask = batch["attention_mask"].reshape(-1).bool()
tensors = {f"layer.{i}": r.float()[mask].contiguous() for i, r in enumerate(router_logits)}
for name, gate in biased_gates:
    tensors[f"{name}.e_score_correction_bias"] = gate.e_score_correction_bias.detach().float().contiguous()
lengths = batch["attention_mask"].sum(1).tolist()
top_k = getattr(model.config, "num_experts_per_tok", None) or getattr(model.config, "moe_top_k", 2)
save_file(tensors, out, metadata={"top_k": str(top_k), "sequence_lengths": str(lengths)})
print(f"wrote {out}: {len(router_logits)} layers, {sum(lengths)} tokens, top_k {top_k}, {len(biased_gates)} biases")
