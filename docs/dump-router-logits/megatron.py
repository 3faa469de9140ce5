"""Capture router logits inside a Megatron-LM (megatron.core) MoE model.

Call `attach(model)` before a forward pass and `save(path, top_k)` after it.
The hooks recompute the logits from each router's input and gate weight
(`hidden @ weight.T`), i.e. before any top-k, bias, or score function.
With `--moe-router-enable-expert-bias`, each TopKRouter holds its bias in the
buffer `expert_bias` (megatron/core/transformer/moe/router.py @005742ff);
`save` writes it beside the logits as `layer.N.expert_bias`, and the lab routes
the file with it (selection only) unless told `--ignore-file-bias`.
"""
import torch
from safetensors.torch import save_file

_captured = []
_routers = []


def attach(model):
    """Registers one hook per MoE layer's router (megatron.core TopKRouter)."""
    _captured.clear()
    _routers.clear()
    handles = []
    for layer in model.decoder.layers:
        router = getattr(layer.mlp, "router", None)
        if router is None:
            continue  # a dense layer
        _routers.append(router)
        def hook(module, inputs, output):
            hidden = inputs[0].reshape(-1, inputs[0].shape[-1])
            _captured.append(torch.nn.functional.linear(hidden.float(), module.weight.float()).cpu())
        handles.append(router.register_forward_hook(hook))
    return handles


def save(path, top_k, sequence_lengths=None):
    metadata = {"top_k": str(top_k)}
    if sequence_lengths is not None:
        metadata["sequence_lengths"] = str(list(sequence_lengths))
    # with tensor/sequence parallelism, gather the token dimension first
    tensors = {f"layer.{i}": t.contiguous() for i, t in enumerate(_captured)}
    for i, router in enumerate(_routers):
        bias = getattr(router, "expert_bias", None)
        if bias is not None:
            tensors[f"layer.{i}.expert_bias"] = bias.detach().float().cpu().contiguous()
    save_file(tensors, path, metadata=metadata)
