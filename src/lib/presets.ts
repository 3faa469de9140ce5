/**
 * Routing presets: the conventions of models people train and fine-tune,
 * each with the source it was read from. `convention(topK?)` takes the
 * model's own top-k unless a file or the reader says otherwise.
 */
import type { RoutingConvention } from "./conventions.js";

export interface RoutingPreset {
  readonly label: string;
  /** Where the convention was read: repository, file, commit or config. */
  readonly source: string;
  /** The model's own top-k and number of experts (for the page's note; files may differ). */
  readonly topK: number;
  readonly experts: number;
  convention(topK?: number): RoutingConvention;
}

export const routingPresets = {
  "deepseek-v3": {
    label: "DeepSeek-V3",
    source:
      "deepseek-ai/DeepSeek-V3 inference/model.py Gate.forward @1ea5a1a7 and configs/config_671B.json: sigmoid, 256 experts in 8 groups, 4 groups kept (group score: max, or top-2 sum with the bias), top-8, gates renormalised × route_scale 2.5",
    topK: 8,
    experts: 256,
    convention: (topK = 8) => ({
      score: "sigmoid",
      topK,
      preSoftmax: true,
      normalizeGates: true,
      scalingFactor: 2.5,
      groups: { count: 8, keep: 4, rule: "deepseek-v3" },
    }),
  },
  "qwen3-moe": {
    label: "Qwen3-MoE",
    source:
      "huggingface/transformers src/transformers/models/qwen3_moe/modeling_qwen3_moe.py (softmax over all experts, top-k, renormalised when norm_topk_prob, true in Qwen3-30B-A3B's config.json: 128 experts, top-8)",
    topK: 8,
    experts: 128,
    convention: (topK = 8) => ({ score: "softmax", topK, preSoftmax: true, normalizeGates: true, scalingFactor: 1 }),
  },
  mixtral: {
    label: "Mixtral",
    source:
      "huggingface/transformers src/transformers/models/mixtral/modeling_mixtral.py (softmax, top-2, weights divided by their sum: a softmax over the chosen logits; 8 experts)",
    topK: 2,
    experts: 8,
    convention: (topK = 2) => ({ score: "softmax", topK, preSoftmax: true, normalizeGates: true, scalingFactor: 1 }),
  },
  olmoe: {
    label: "OLMoE",
    source:
      "huggingface/transformers src/transformers/models/olmoe/modeling_olmoe.py (softmax, top-8 of 64, norm_topk_prob false: gates as they are); the lab's own router",
    topK: 8,
    experts: 64,
    convention: (topK = 8) => ({ score: "softmax", topK, preSoftmax: true, normalizeGates: false, scalingFactor: 1 }),
  },
  "gpt-oss": {
    label: "gpt-oss-style (top-k, then softmax)",
    source:
      "openai/gpt-oss gpt_oss/torch/model.py MLPBlock (torch.topk of the gate logits, then softmax over the k chosen; gpt-oss-20b: 32 experts, top-4)",
    topK: 4,
    experts: 32,
    convention: (topK = 4) => ({ score: "softmax", topK, preSoftmax: false, normalizeGates: true, scalingFactor: 1 }),
  },
  megatron: {
    label: "Megatron-LM defaults",
    source:
      "NVIDIA/Megatron-LM megatron/core/transformer/transformer_config.py @d98e8a64: moe_router_score_function softmax, moe_router_pre_softmax False, moe_router_topk 2, no groups, no scaling factor",
    topK: 2,
    experts: 8,
    convention: (topK = 2) => ({ score: "softmax", topK, preSoftmax: false, normalizeGates: true, scalingFactor: 1 }),
  },
} as const satisfies Record<string, RoutingPreset>;

export type PresetName = keyof typeof routingPresets;
export const presetNames = Object.keys(routingPresets) as PresetName[];

export function isPresetName(name: string): name is PresetName {
  return Object.hasOwn(routingPresets, name);
}
