/**
 * What each training framework adds to its loss for load balancing and the
 * router z-loss: the formula, how layers are combined, the documented default
 * coefficient, how its trainer scales the term under gradient accumulation
 * and data parallelism, and where in the upstream code each fact comes from.
 *
 * "Per-layer strength" is in common units: the multiple of one layer's
 * Switch LBL on routing slots (`E·Σ f P`, Σ f = 1) for the load-balancing
 * loss, and of one layer's mean `lse²` for the z-loss, that acts on that
 * layer's router logits. Megatron-LM attaches every layer's loss with the
 * full coefficient, so its strength is the coefficient itself.
 *
 * The upstream sources were read at these snapshots (the lab's own reading;
 * open the links to check):
 * - NVIDIA/Megatron-LM @ d98e8a64: megatron/core/transformer/moe/router.py
 *   (`_apply_aux_loss`, `_apply_seq_aux_loss`, `_apply_global_aux_loss`,
 *   `_apply_z_loss`), moe_utils.py (`switch_load_balancing_loss_func`,
 *   `z_loss_func`); schedules.py divides each micro-batch's loss by the number
 *   of micro-batches and DDP averages over data-parallel ranks (PR #2217).
 * - databricks/megablocks @ 78eea65: megablocks/layers/moe.py
 *   (`batched_load_balancing_loss`), router.py (`batched_router_zloss`, PR
 *   #151), arguments.py (`moe_loss_weight = 0.1`, `moe_zloss_weight = 0`).
 * - Muennighoff/megablocks branch olmoe @ 4a25bc7 (commit 24bae3e "Add
 *   zloss"): the z-loss inside `batched_load_balancing_loss`, ÷ layers·tokens·top_k.
 * - allenai/OLMo olmo/train.py: `lb_loss / len(micro_batches)` (how OLMoE's
 *   trainer scaled both MoE losses under gradient accumulation).
 * - allenai/OLMo-core @ d8ebe98: src/olmo_core/nn/moe/loss.py
 *   (`load_balancing_loss`, `router_z_loss`), moe.py (`MoEConfig`:
 *   lb_loss_weight 0.01, z_loss_weight None, scale_loss_by_num_layers),
 *   train_module.py (`batch_num_tokens_for_loss` for every micro-batch).
 * - huggingface/transformers: models/mixtral/modeling_mixtral.py
 *   `load_balancing_loss_func`; trainer.py `training_step` (the loss is not
 *   divided by the accumulation steps when the model accepts loss kwargs, as
 *   Mixtral, OLMoE and Qwen-MoE do) and `compute_loss` (× world size under
 *   `average_tokens_across_devices`, issue #48690, commit 4815a0a6).
 * - hpcaitech/ColossalAI @ 4606b55: colossalai/moe/routers.py
 *   (`set_aux_loss`: E²·mean(f·P) with token fractions; `set_z_loss`), and
 *   OpenMoE's `_calculate_router_loss` (mean over MoE layers).
 * - DeepSeek-V3 technical report §2.1.2 (the sequence-wise balance loss);
 *   DeepSeek-V2's modeling code for the layer sum and sequence mean.
 * - pytorch/torchtitan @ b5bcd76c: torchtitan/components/optimizer/
 *   optimizer.py 447–520 (the expert-bias update; `load_balance_coeff` 1e-3).
 */

export const frameworkNames = [
  "megatron",
  "megatron-seq",
  "megatron-global",
  "megablocks",
  "olmoe",
  "olmo-core",
  "hf",
  "openmoe",
  "deepseek-v3",
  "torchtitan",
] as const;

export type FrameworkName = (typeof frameworkNames)[number];

export interface Source {
  readonly label: string;
  readonly url: string;
}

export interface Shape {
  readonly layers: number;
  readonly topK: number;
}

export interface LossConvention {
  /** The configuration key that holds the coefficient. */
  readonly key: string;
  readonly defaultCoefficient: number;
  /** Where the default comes from, in a few words. */
  readonly defaultNote: string;
  /** The formula as the framework computes it for one micro-batch, in words. */
  readonly formula: string;
  /** Per-layer strength of a coefficient of 1, in the common units. */
  perLayer(shape: Shape): number;
  /** The factor in words, e.g. "c / L". */
  readonly perLayerText: string;
}

export interface FrameworkSpec {
  readonly name: FrameworkName;
  readonly label: string;
  readonly lbl: LossConvention | null;
  readonly zLoss: LossConvention | null;
  /** How the trainer scales each micro-batch's term before backward, in words. */
  readonly trainer: string;
  /** Choices the lab made where the upstream code leaves one. */
  readonly choices: readonly string[];
  readonly sources: readonly Source[];
  /** Top-k values the framework supports; undefined: any. */
  readonly supportedTopK?: readonly number[];
}

const megatronRouter: Source = {
  label: "Megatron-LM router.py (d98e8a64)",
  url: "https://github.com/NVIDIA/Megatron-LM/blob/d98e8a64/megatron/core/transformer/moe/router.py",
};
const megatronUtils: Source = {
  label: "Megatron-LM moe_utils.py: switch_load_balancing_loss_func, z_loss_func",
  url: "https://github.com/NVIDIA/Megatron-LM/blob/d98e8a64/megatron/core/transformer/moe/moe_utils.py",
};
const megatronScale: Source = {
  label: "Megatron-LM PR #2217: aux-loss scale under DP and GA",
  url: "https://github.com/NVIDIA/Megatron-LM/pull/2217",
};
const megatronZ: LossConvention = {
  key: "moe_z_loss_coeff",
  defaultCoefficient: 1e-3,
  defaultNote: "the docs' suggested start (the code default is None: off)",
  formula: "β · mean over tokens of lse², attached in every layer (summed over layers)",
  perLayer: () => 1,
  perLayerText: "β",
};

export const frameworks: Record<FrameworkName, FrameworkSpec> = {
  megatron: {
    name: "megatron",
    label: "Megatron-LM (aux_loss)",
    lbl: {
      key: "moe_aux_loss_coeff",
      defaultCoefficient: 1e-2,
      defaultNote: "the docs' recommended start (the code default is 0: off)",
      formula:
        "α · E · Σ_e f_e P_e per layer on the micro-batch (slot fractions), attached in every layer (summed over layers)",
      perLayer: () => 1,
      perLayerText: "α",
    },
    zLoss: megatronZ,
    trainer: "each micro-batch's loss ÷ the number of micro-batches; DDP averages gradients over data-parallel ranks",
    choices: [],
    sources: [megatronRouter, megatronUtils, megatronScale],
  },
  "megatron-seq": {
    name: "megatron-seq",
    label: "Megatron-LM (seq_aux_loss)",
    lbl: {
      key: "moe_aux_loss_coeff",
      defaultCoefficient: 1e-2,
      defaultNote: "the docs' recommended start (the code default is 0: off)",
      formula: "α · E · Σ_e f_e P_e on each sequence, averaged over the micro-batch's sequences, summed over layers",
      perLayer: () => 1,
      perLayerText: "α (per sequence)",
    },
    zLoss: megatronZ,
    trainer: "each micro-batch's loss ÷ the number of micro-batches; DDP averages over ranks",
    choices: [
      "Megatron reshapes a micro-batch to [sequence length, batch × experts], so its sequences have one length; with unequal lengths the lab computes each sequence's loss on its own tokens. With sequence packing Megatron's 'sequence' is the packed row, not the document.",
    ],
    sources: [megatronRouter, megatronUtils],
  },
  "megatron-global": {
    name: "megatron-global",
    label: "Megatron-LM (global_aux_loss)",
    lbl: {
      key: "moe_aux_loss_coeff",
      defaultCoefficient: 1e-2,
      defaultNote: "the docs' recommended start (the code default is 0: off)",
      formula:
        "α · E · Σ_e f_e P_e with f from counts all-reduced over data-parallel ranks and accumulated in a running buffer over the step's micro-batches (reset at each optimizer step), P local, both divided by the global token count",
      perLayer: () => 1,
      perLayerText: "α (÷ DP, issue #3672)",
    },
    zLoss: megatronZ,
    trainer:
      "each micro-batch's loss ÷ the number of micro-batches; DDP averages over ranks; the global token count in the denominator makes the gradient ÷ DP (issue #3672, open)",
    choices: [],
    sources: [
      megatronRouter,
      {
        label: "Megatron-LM #3672: global aux loss gradient ÷ world size",
        url: "https://github.com/NVIDIA/Megatron-LM/issues/3672",
      },
      {
        label: "Megatron-LM PR #3769 (the proposed ×dp fix, closed)",
        url: "https://github.com/NVIDIA/Megatron-LM/pull/3769",
      },
    ],
  },
  megablocks: {
    name: "megablocks",
    label: "MegaBlocks",
    lbl: {
      key: "moe_loss_weight",
      defaultCoefficient: 0.1,
      defaultNote: "megablocks/layers/arguments.py",
      formula: "w · E / (L · T · k) · Σ_l Σ_e c_le · P_le: the mean over layers of the per-layer Switch LBL",
      perLayer: ({ layers }) => 1 / layers,
      perLayerText: "w / L",
    },
    zLoss: {
      key: "moe_zloss_weight",
      defaultCoefficient: 0,
      defaultNote: 'arguments.py: 0 ("1e-3 is a reasonable value")',
      formula: "β · mean over tokens of logsumexp² (stable), one value per router; the caller reduces them",
      perLayer: ({ layers }) => 1 / layers,
      perLayerText: "β / L (routers averaged)",
    },
    trainer: "each micro-batch's loss ÷ the number of micro-batches (as OLMo's trainer does); DDP averages over ranks",
    choices: [
      "batched_router_zloss returns one value per router and leaves the reduction to its caller; the only framework caller found (OLMo-core's MegaBlocks wrapper) averages over routers, so the lab averages.",
    ],
    sources: [
      {
        label: "megablocks/layers/moe.py: batched_load_balancing_loss (78eea65)",
        url: "https://github.com/databricks/megablocks/blob/78eea65/megablocks/layers/moe.py",
      },
      {
        label: "megablocks/layers/router.py: batched_router_zloss (PR #151)",
        url: "https://github.com/databricks/megablocks/pull/151",
      },
    ],
  },
  olmoe: {
    name: "olmoe",
    label: "OLMoE fork of MegaBlocks",
    lbl: {
      key: "moe_loss_weight",
      defaultCoefficient: 0.01,
      defaultNote: "OLMoE-1B-7B's configuration",
      formula: "as MegaBlocks: the mean over layers of the per-layer Switch LBL, × w",
      perLayer: ({ layers }) => 1 / layers,
      perLayerText: "w / L",
    },
    zLoss: {
      key: "moe_zloss_weight",
      defaultCoefficient: 1e-3,
      defaultNote: "OLMoE-1B-7B's configuration",
      formula: "β · Σ_l Σ_t log(Σ exp x)² / (L · T · k): the LBL's denominator reused, k included (naive log-sum-exp)",
      perLayer: ({ layers, topK }) => 1 / (layers * topK),
      perLayerText: "β / (L · k)",
    },
    trainer:
      "each micro-batch's losses ÷ the number of micro-batches (allenai/OLMo olmo/train.py); DDP averages over ranks",
    choices: [],
    sources: [
      {
        label: 'Muennighoff/megablocks branch olmoe (4a25bc7), commit 24bae3e "Add zloss"',
        url: "https://github.com/Muennighoff/megablocks/commit/24bae3e",
      },
      {
        label: "allenai/OLMo olmo/train.py: lb_loss / len(micro_batches)",
        url: "https://github.com/allenai/OLMo/blob/main/olmo/train.py",
      },
    ],
  },
  "olmo-core": {
    name: "olmo-core",
    label: "OLMo-core",
    lbl: {
      key: "lb_loss_weight",
      defaultCoefficient: 0.01,
      defaultNote: "MoEConfig in olmo_core/nn/moe/moe.py",
      formula:
        "w / L · (E / k) · Σ_e c_e · P_e / N, N the rank's label tokens over all its micro-batches (local_batch granularity)",
      perLayer: ({ layers }) => 1 / layers,
      perLayerText: "w / L (× tokens / label tokens)",
    },
    zLoss: {
      key: "z_loss_weight",
      defaultCoefficient: 0,
      defaultNote: "MoEConfig: None (off)",
      formula: "β / L · Σ_t logsumexp² / N, no k",
      perLayer: ({ layers }) => 1 / layers,
      perLayerText: "β / L (× tokens / label tokens)",
    },
    trainer:
      "every micro-batch's loss is divided by the rank's whole-batch label-token count, so micro-batch losses are summed, not ÷ their number; DDP averages over ranks",
    choices: [
      "OLMo-core's loss functions default to dividing by tokens, while its trainer passes the label-token count (tokens minus one per sequence): the lab follows the trainer.",
    ],
    sources: [
      {
        label: "OLMo-core nn/moe/loss.py (d8ebe98)",
        url: "https://github.com/allenai/OLMo-core/blob/d8ebe986d1532b3840e19b70623f57915d24e12d/src/olmo_core/nn/moe/loss.py",
      },
      {
        label: 'OLMo-core PR #60: "the z-loss denominator was wrong"',
        url: "https://github.com/allenai/OLMo-core/pull/60",
      },
    ],
  },
  hf: {
    name: "hf",
    label: "Hugging Face transformers (Mixtral / OLMoE / Qwen-MoE)",
    lbl: {
      key: "router_aux_loss_coef",
      defaultCoefficient: 1e-3,
      defaultNote: "MixtralConfig's default (OLMoE's config: 0.01; Qwen-MoE: 0.001)",
      formula:
        "c · E · Σ_e f_e P_e with every layer's rows pooled into one [L·T, E] matrix and f the fraction of tokens (Σ f = k)",
      perLayer: ({ layers, topK }) => topK / layers,
      perLayerText: "c · k / L (exact when the layers route alike)",
    },
    zLoss: null,
    trainer:
      "the Trainer does not divide the loss by the accumulation steps for these models (they accept loss kwargs), so the aux term is summed over micro-batches; with average_tokens_across_devices it multiplies the whole loss by the world size (#48690); DDP averages over ranks",
    choices: [
      "HF's MoE configs default output_router_logits = False: no auxiliary loss is added at all unless it is turned on.",
    ],
    sources: [
      {
        label: "transformers modeling_mixtral.py: load_balancing_loss_func",
        url: "https://github.com/huggingface/transformers/blob/main/src/transformers/models/mixtral/modeling_mixtral.py",
      },
      {
        label: "transformers #48690: aux loss × DDP world size",
        url: "https://github.com/huggingface/transformers/issues/48690",
      },
      {
        label: "transformers #28255: pooling hides complementary imbalance",
        url: "https://github.com/huggingface/transformers/issues/28255",
      },
    ],
  },
  openmoe: {
    name: "openmoe",
    label: "OpenMoE / ColossalAI",
    lbl: {
      key: "router_aux_loss_factor",
      defaultCoefficient: 0.01,
      defaultNote: "OpenMoE's configuration",
      formula: "c · mean over MoE layers of E² · mean_e(f_e · P_e), f the fraction of tokens (Σ f = k)",
      perLayer: ({ layers, topK }) => topK / layers,
      perLayerText: "c · k / L",
    },
    zLoss: {
      key: "router_z_loss_factor",
      defaultCoefficient: 1e-4,
      defaultNote: "OpenMoE's configuration",
      formula: "β · mean over MoE layers of Σ_t logsumexp² / T",
      perLayer: ({ layers }) => 1 / layers,
      perLayerText: "β / L",
    },
    trainer:
      "the lab assumes each micro-batch's loss ÷ the number of micro-batches and DDP averaging (the trainer was not read)",
    choices: ["ColossalAI has only top-1 and top-2 routers."],
    supportedTopK: [1, 2],
    sources: [
      {
        label: "ColossalAI colossalai/moe/routers.py (4606b55)",
        url: "https://github.com/hpcaitech/ColossalAI/blob/4606b558ce6b6e3e7d49b9a74ff6db8e2a2b320c/colossalai/moe/routers.py",
      },
    ],
  },
  "deepseek-v3": {
    name: "deepseek-v3",
    label: "DeepSeek-V3 (sequence-wise balance loss)",
    lbl: {
      key: "α",
      defaultCoefficient: 1e-4,
      defaultNote: "DeepSeek-V3 technical report",
      formula:
        "α · Σ_e f_e P_e per sequence, f_e = E/(k·T) · count, P from sigmoid scores normalised per token; mean over sequences, summed over layers",
      perLayer: () => 1,
      perLayerText: "α (per sequence, sigmoid P)",
    },
    zLoss: null,
    trainer:
      "no public training code: the lab assumes each micro-batch's loss ÷ the number of micro-batches and DDP averaging",
    choices: [
      "The report defines the loss for one sequence of one layer; like DeepSeek-V2's code and Megatron-LM's seq_aux_loss, the lab averages over sequences and sums over layers.",
      "Top-k of sigmoid scores is top-k of the logits (sigmoid is monotonic); the lab applies no expert bias or group limit here.",
    ],
    sources: [{ label: "DeepSeek-V3 technical report, §2.1.2", url: "https://arxiv.org/abs/2412.19437" }],
  },
  torchtitan: {
    name: "torchtitan",
    label: "torchtitan",
    lbl: null,
    zLoss: null,
    trainer:
      "balances with an expert bias (load_balance_coeff = 1e-3, sign rule, recentred), updated in the optimizer step: no auxiliary loss, so no coefficient acts on the router's gradient",
    choices: [],
    sources: [
      {
        label: "torchtitan components/optimizer/optimizer.py 447–520 (b5bcd76c)",
        url: "https://github.com/pytorch/torchtitan/blob/b5bcd76c/torchtitan/components/optimizer/optimizer.py",
      },
      { label: "torchtitan #1506: recentring the bias", url: "https://github.com/pytorch/torchtitan/issues/1506" },
    ],
  },
};

export function isFrameworkName(name: string): name is FrameworkName {
  return (frameworkNames as readonly string[]).includes(name);
}
