/**
 * `lbl.hf`: Hugging Face's `load_balancing_loss_func`
 * (transformers, src/transformers/models/mixtral/modeling_mixtral.py): the
 * rows of all layers pooled into one `[L·T, E]` matrix, `f` the fraction of
 * tokens (not slots) that chose each expert, so balance reads k.
 */
import { wholeBatch } from "../../batching.js";
import { groupTotals } from "../../summary.js";
import { defineLoss, type ScoreBlock } from "../descriptor.js";
import { hfPooled } from "../lbl.js";

export const lblHf = defineLoss({
  family: "lbl",
  variant: "hf",
  formula: String.raw`E \sum_e \Big(\tfrac{1}{LT}\sum_{l,t} \mathbb{1}[e \in S_{l,t}]\Big)\Big(\tfrac{1}{LT}\sum_{l,t} p_{l,t,e}\Big)`,
  units: "dimensionless",
  balance: (topK) => topK,
  note: (c) => `Hugging Face, pooled layers, token fractions; balance reads k = ${c.topK}`,
  value: (summary) => hfPooled(summary),
  gradient: {
    kind: "weighted-scores",
    *blocks(summary): Generator<ScoreBlock> {
      const { layers, experts, tokens } = summary;
      const all = wholeBatch(summary.sequenceLengths.length)[0];
      const weights = new Float64Array(experts);
      for (let l = 0; l < layers; l++) {
        const totals = groupTotals(summary, l, all);
        for (let e = 0; e < experts; e++) weights[e] += totals.load[e] / (layers * tokens);
      }
      for (let layer = 0; layer < layers; layer++)
        yield { layer, group: all, weights, scale: experts / (layers * tokens) };
    },
  },
});
