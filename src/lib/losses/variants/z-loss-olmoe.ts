/**
 * `z_loss.olmoe`: the same divided by k, as the OLMoE fork of MegaBlocks
 * computes it (denominator layers·tokens·top_k; see ../shared/formulas.md for
 * the history of ÷k: upstream MegaBlocks has no ÷k).
 */
import { defineLoss } from "../descriptor.js";
import { olmoe } from "../z-loss.js";

export const zLossOlmoe = defineLoss({
  family: "z_loss",
  variant: "olmoe",
  formula: String.raw`\frac{1}{L T k}\sum_{l,t} \Big(\log \sum_e e^{x_{l,t,e}}\Big)^2`,
  units: "nats²",
  balance: () => null,
  note: () => "÷ layers·tokens·k (the OLMoE fork of MegaBlocks)",
  value: (summary) => olmoe(summary),
  gradient: { kind: "squared-lse", scale: ({ layers, tokens, topK }) => 1 / (layers * tokens * topK) },
});
