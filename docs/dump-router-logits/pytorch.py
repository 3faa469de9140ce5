"""Capture router logits from a plain PyTorch MoE: any nn.Linear gate per layer.

    gates = [block.moe.router for block in model.blocks]   # your gate modules
    biases = [block.moe.expert_bias for block in model.blocks]  # if you balance with a bias
    capture = RouterCapture(gates)
    model(input_ids)
    capture.save_npy("router_logits.npy")                 # [layers, tokens, experts]
    capture.save_bias_json("expert_bias.json", biases)    # then: moe-lab losses router_logits.npy --bias expert_bias.json

The logits are the gate's output before any score function, top-k or bias:
give the lab the convention your router applies (--score, --groups, --preset)
and the bias, and it routes them as your model did.
"""
import json

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

    @staticmethod
    def save_bias_json(path, biases):
        """One array of E numbers per layer, as `--bias` and the page's bias field take them.

        Saved as float64 decimals: the exact values your router adds (a bias kept in
        float32, as Megatron-LM keeps it, converts without loss)."""
        rows = [[float(b) for b in bias.detach().double().cpu().reshape(-1)] for bias in biases]
        with open(path, "w") as out:
            json.dump(rows, out)
