"""Capture router logits from a plain PyTorch MoE: any nn.Linear gate per layer.

    gates = [block.moe.router for block in model.blocks]   # your gate modules
    capture = RouterCapture(gates)
    model(input_ids)
    capture.save_npy("router_logits.npy")                 # [layers, tokens, experts]
"""
import numpy as np
import torch


class RouterCapture:
    def __init__(self, gates):
        self.logits = [[] for _ in gates]
        self.handles = [gate.register_forward_hook(self._hook(i)) for i, gate in enumerate(gates)]

    def _hook(self, index):
        def hook(module, inputs, output):
            self.logits[index].append(output.detach().float().reshape(-1, output.shape[-1]).cpu())
        return hook

    def save_npy(self, path):
        stacked = torch.stack([torch.cat(per_layer) for per_layer in self.logits])
        np.save(path, stacked.numpy())  # float32, C order: the lab streams it
        for handle in self.handles:
            handle.remove()
