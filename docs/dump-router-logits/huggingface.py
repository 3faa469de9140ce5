"""Dump the router logits of a Hugging Face MoE model (Mixtral, OLMoE, Qwen-MoE, ...).

usage: python huggingface.py MODEL_ID_OR_PATH TEXT_FILE [OUT.safetensors]
Writes one [batch*seq, experts] tensor per MoE layer (layer.0, layer.1, ...) with
top_k and sequence_lengths in the metadata: drop the file on the lab's
"Your router logits" page or run `npx moe-lab losses OUT.safetensors`.
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
with torch.no_grad():
    output = model(**batch, output_router_logits=True)
# Keep real tokens only: padding would count as routed tokens.
mask = batch["attention_mask"].reshape(-1).bool()
layers = {f"layer.{i}": r.float()[mask].contiguous() for i, r in enumerate(output.router_logits)}
lengths = batch["attention_mask"].sum(1).tolist()
top_k = getattr(model.config, "num_experts_per_tok", None) or getattr(model.config, "moe_top_k", 2)
save_file(layers, out, metadata={"top_k": str(top_k), "sequence_lengths": str(lengths)})
print(f"wrote {out}: {len(layers)} layers, {sum(lengths)} tokens, top_k {top_k}")
