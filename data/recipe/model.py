"""OLMoE-mini: OLMoE-1B-7B's architecture scaled down (nanoGPT-style, one file).

Decoder-only; RMSNorm pre-norm; QK-norm (an RMSNorm over the whole projected q
and over the whole projected k, before the split into heads, as in the
transformers OLMoE model); RoPE (theta 10,000); an MoE layer in every block:
a bias-free linear router, softmax over all experts, top-k, gates NOT
renormalised (norm_topk_prob = false), SwiGLU experts, dropless; untied LM head.

Two MoE forward paths compute the same function:
  grouped   slots sorted by expert, one matmul per expert on its contiguous
            run (training: exact FLOPs however imbalanced the routing);
  buffered  slots copied into per-expert buffers cut to the busiest expert's
            count, one batched matmul (what is exported to ONNX: torch 1.13's
            exporter silently drops the accumulation of index_add, and a data-
            dependent loop over experts does not trace). Its cost is
            E x the busiest count: ~1.5-3x the exact FLOPs on balanced
            routing, up to E/k times once a router collapses.
check_paths.py checks that both agree, on balanced and on collapsed routing.
"""
import math
from dataclasses import dataclass, asdict

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class Config:
    vocab_size: int = 4096
    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    n_experts: int = 64
    top_k: int = 8
    expert_hidden: int = 64
    max_seq: int = 256
    rope_theta: float = 10_000.0
    norm_eps: float = 1e-5

    def to_dict(self):
        return asdict(self)


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(config, seq):
    head = config.d_model // config.n_heads
    inv = 1.0 / (config.rope_theta ** (torch.arange(0, head, 2, dtype=torch.float32) / head))
    angles = torch.arange(seq, dtype=torch.float32)[:, None] * inv[None, :]
    return angles.cos(), angles.sin()


def apply_rope(x, cos, sin):
    # x: [B, H, S, D]; rotate the two halves (the transformers "rotate_half" convention)
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    cos = torch.cat([cos, cos], -1)
    sin = torch.cat([sin, sin], -1)
    return x * cos + torch.cat([-x2, x1], -1) * sin


class Attention(nn.Module):
    def __init__(self, config):
        super().__init__()
        d = config.d_model
        self.heads = config.n_heads
        self.q = nn.Linear(d, d, bias=False)
        self.k = nn.Linear(d, d, bias=False)
        self.v = nn.Linear(d, d, bias=False)
        self.o = nn.Linear(d, d, bias=False)
        self.q_norm = RMSNorm(d, config.norm_eps)
        self.k_norm = RMSNorm(d, config.norm_eps)

    def forward(self, x, cos, sin):
        B, S, D = x.shape
        H = self.heads
        q = self.q_norm(self.q(x)).view(B, S, H, D // H).transpose(1, 2)
        k = self.k_norm(self.k(x)).view(B, S, H, D // H).transpose(1, 2)
        v = self.v(x).view(B, S, H, D // H).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(D // H)
        causal = torch.ones(S, S, dtype=torch.bool, device=x.device).triu(1)
        scores = scores.masked_fill(causal, float("-inf"))
        y = scores.softmax(-1) @ v
        return self.o(y.transpose(1, 2).reshape(B, S, D))


class MoE(nn.Module):
    def __init__(self, config):
        super().__init__()
        d, h, E = config.d_model, config.expert_hidden, config.n_experts
        self.top_k = config.top_k
        self.router = nn.Linear(d, E, bias=False)
        self.w_gate = nn.Parameter(torch.randn(E, d, h) / math.sqrt(d))
        self.w_up = nn.Parameter(torch.randn(E, d, h) / math.sqrt(d))
        self.w_down = nn.Parameter(torch.randn(E, h, d) / math.sqrt(h))
        # Auxiliary-loss-free balancing: a bias added to the scores only to choose.
        self.register_buffer("expert_bias", torch.zeros(E), persistent=True)
        self.path = "grouped"

    def forward(self, x, forced=None, router_noise=None, router_bf16=None):
        """x [N, d]; forced [N, k] (expert per slot, -1: the router's own choice),
        router_noise [N, d] added to the router's input only, router_bf16 a
        0-d flag (nonzero: the router reads its input rounded to bfloat16).
        The perturbations reach the route and the gates, never the experts'
        input: the routing-consistency views isolate what routing does."""
        N, d = x.shape
        router_input = x
        if router_noise is not None:
            router_input = router_input + router_noise
        if router_bf16 is not None:
            router_input = torch.where(router_bf16 != 0, round_to_bfloat16(router_input), router_input)
        logits = self.router(router_input)
        probs = logits.float().softmax(-1)
        chosen = torch.topk(probs + self.expert_bias, self.top_k, dim=-1).indices
        if forced is not None:
            # a forced slot replaces the router's choice in that slot; the
            # gate stays the router's probability of the expert now used
            chosen = torch.where(forced >= 0, forced, chosen)
        gates = probs.gather(1, chosen)  # unbiased, not renormalised (OLMoE)
        if self.path == "buffered":
            y = self._buffered(x, chosen, gates)
        else:
            y = self._grouped(x, chosen, gates)
        return y, logits, chosen

    def _buffered(self, x, chosen, gates):
        # The exported sparse form (exact FLOPs up to the busiest expert's
        # count): each (token, slot) pair is copied to row `position` of its
        # expert's buffer, one batched matmul runs over [E, capacity, d], and
        # each slot reads its row back. No sort and no index_add (whose
        # accumulation torch 1.13's exporter drops); the k slots of a token
        # are summed by a [1, k] @ [k, d] product per token.
        N, d = x.shape
        E, k = self.w_gate.shape[0], self.top_k
        expert_of_slot = chosen.reshape(-1)  # [N*k], token-major
        one_hot = (expert_of_slot.unsqueeze(1) == torch.arange(E)).to(torch.int32)  # [N*k, E]
        # how many earlier slots chose the same expert
        position = one_hot.cumsum(0).gather(1, expert_of_slot.unsqueeze(1)).squeeze(1).to(expert_of_slot.dtype) - 1
        capacity = position.max() + 1
        row = expert_of_slot * capacity + position  # [N*k] rows of an [E*capacity, d] buffer
        # zeros of a data-dependent size: built from arange so that tracing
        # keeps the size symbolic instead of baking in this input's capacity
        empty = (torch.arange(E * capacity, dtype=x.dtype) * 0).unsqueeze(1).expand(-1, d)
        slot_inputs = x.unsqueeze(1).expand(N, k, d).reshape(N * k, d)
        buffer = empty.index_put((row,), slot_inputs).view(E, -1, d)  # [E, capacity, d]
        out = (F.silu(buffer @ self.w_gate) * (buffer @ self.w_up)) @ self.w_down  # [E, capacity, d]
        slot_outputs = out.reshape(-1, d).index_select(0, row).view(N, k, d)
        return (gates.unsqueeze(1).to(x.dtype) @ slot_outputs).squeeze(1)  # [N, 1, k] @ [N, k, d]

    def _grouped(self, x, chosen, gates):
        # Slots sorted by expert, then one matmul per expert on its contiguous
        # run: exact FLOPs whatever the imbalance (a padded buffer costs
        # E × the busiest expert's count, up to E/k times more when collapsed).
        N, d = x.shape
        E = self.w_gate.shape[0]
        flat_expert = chosen.reshape(-1)
        order = torch.argsort(flat_expert, stable=True)
        token_of_slot = order // self.top_k
        counts = torch.bincount(flat_expert, minlength=E).tolist()
        xs = x[token_of_slot].split(counts)
        outs = []
        for e, xe in enumerate(xs):
            if xe.shape[0]:
                outs.append((F.silu(xe @ self.w_gate[e]) * (xe @ self.w_up[e])) @ self.w_down[e])
        out = torch.cat(outs)
        weighted = out * gates.reshape(-1)[order].unsqueeze(-1).to(out.dtype)
        return x.new_zeros(N, d).index_add_(0, token_of_slot, weighted)


def round_to_bfloat16(x):
    """x rounded to bfloat16's 8 significant bits, half to even, kept in float32.

    Written with Log/Floor/Pow/Round so that it exports to any ONNX runtime
    (a Cast to bfloat16 is not in every backend); equals x.to(torch.bfloat16)
    for normal numbers (export.py checks it on the reference inputs).
    """
    magnitude = x.abs()
    exponent = torch.floor(torch.log2(torch.where(magnitude > 0, magnitude, torch.ones_like(x))))
    step = torch.pow(2.0, exponent - 7)
    return torch.where(magnitude > 0, torch.round(x / step) * step, x)


class Block(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.attn_norm = RMSNorm(config.d_model, config.norm_eps)
        self.attn = Attention(config)
        self.moe_norm = RMSNorm(config.d_model, config.norm_eps)
        self.moe = MoE(config)

    def forward(self, x, cos, sin, forced=None, router_noise=None, router_bf16=None):
        x = x + self.attn(self.attn_norm(x), cos, sin)
        B, S, D = x.shape
        # the overrides broadcast: [1, 1, k] or [1, 1, d] means "every token"
        if forced is not None:
            forced = forced.expand(B, S, -1).reshape(B * S, -1)
        if router_noise is not None:
            router_noise = router_noise.expand(B, S, -1).reshape(B * S, D)
        y, logits, chosen = self.moe(self.moe_norm(x).reshape(B * S, D), forced, router_noise, router_bf16)
        return x + y.view(B, S, D), logits.view(B, S, -1), chosen.view(B, S, -1)


class OLMoEMini(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.d_model)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.norm = RMSNorm(config.d_model, config.norm_eps)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        nn.init.normal_(self.embed.weight, std=0.02)
        nn.init.normal_(self.lm_head.weight, std=0.02)

    def set_moe_path(self, path):
        for block in self.blocks:
            block.moe.path = path

    def forward(self, input_ids, forced_experts=None, router_input_noise=None, router_bf16=None):
        """Returns logits [B, S, V], router logits [L, B, S, E] and chosen experts [L, B, S, k].

        Optional overrides, each broadcast over batch and sequence:
        forced_experts [L, B|1, S|1, k] (int64, -1 = the router's own choice),
        router_input_noise [L, B|1, S|1, d] added to each router's input,
        router_bf16 (0-d): nonzero rounds each router's input to bfloat16.
        """
        B, S = input_ids.shape
        cos, sin = rope_tables(self.config, S)
        x = self.embed(input_ids)
        router, chosen = [], []
        for layer, block in enumerate(self.blocks):
            forced = None if forced_experts is None else forced_experts[layer]
            noise = None if router_input_noise is None else router_input_noise[layer]
            x, r, c = block(x, cos, sin, forced, noise, router_bf16)
            router.append(r)
            chosen.append(c)
        return self.lm_head(self.norm(x)), torch.stack(router), torch.stack(chosen)

    def parameter_count(self):
        return sum(p.numel() for p in self.parameters())
