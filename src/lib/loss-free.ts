/**
 * Auxiliary-loss-free balancing (Wang et al. 2024; DeepSeek-V3): each expert
 * has a bias that is added to the routing scores only to choose the experts;
 * the gate weights stay the unbiased probabilities, and no gradient is
 * involved. After each batch the bias moves against the load error.
 */
import { softmaxRow, topKRow } from "./routing.js";
import type { RouterLogits } from "./types.js";
import { validateBatch } from "./validate.js";

/** `sign`: `b ← b + u · sign(mean − c)`; `proportional`: `b ← b + u · (mean − c)`. */
export type BiasRule = "sign" | "proportional";

export interface BiasStep {
  /** Loads under the biased selection, `c[l][e]`, layers × experts. */
  readonly load: Float64Array;
  /** The biases after the update, layers × experts. */
  readonly bias: Float64Array;
  /** Chosen experts per token, layers × tokens × k, largest biased score first. */
  readonly chosen: Int32Array;
  /** Gate weights of the chosen experts: the unbiased `p`, not renormalised. */
  readonly gates: Float64Array;
}

/**
 * One step: select `top-k of p + b`, count the loads, update the bias.
 * `bias` holds one value per layer and expert (layers × experts) and is not modified.
 */
export function biasBalancingStep(logits: RouterLogits, topK: number, bias: Float64Array, rate: number, rule: BiasRule = "sign"): BiasStep {
  const { layers, tokens, experts, data } = logits;
  validateBatch(logits, { topK, sequenceLengths: [tokens] });
  const load = new Float64Array(layers * experts);
  const chosen = new Int32Array(layers * tokens * topK);
  const gates = new Float64Array(layers * tokens * topK);
  const p = new Float64Array(experts);
  const scores = new Float64Array(experts);
  for (let l = 0; l < layers; l++) {
    for (let t = 0; t < tokens; t++) {
      const row = l * tokens + t;
      softmaxRow(data, row * experts, experts, p);
      for (let e = 0; e < experts; e++) scores[e] = p[e] + bias[l * experts + e];
      topKRow(scores, experts, topK, chosen, row * topK);
      for (let i = 0; i < topK; i++) {
        const e = chosen[row * topK + i];
        gates[row * topK + i] = p[e];
        load[l * experts + e] += 1;
      }
    }
  }
  return { load, chosen, gates, bias: updateBias(bias, load, experts, tokens, topK, rate, rule) };
}

/**
 * The bias update alone, given one batch's loads (layers × experts, `experts`
 * per layer) over `tokens` tokens: experts below the mean load `T·k/E` gain
 * bias, those above lose it.
 */
export function updateBias(bias: Float64Array, load: Float64Array, experts: number, tokens: number, topK: number, rate: number, rule: BiasRule = "sign"): Float64Array {
  const meanLoad = (tokens * topK) / experts;
  const next = new Float64Array(bias.length);
  for (let i = 0; i < bias.length; i++) {
    const error = meanLoad - load[i];
    next[i] = bias[i] + rate * (rule === "sign" ? Math.sign(error) : error);
  }
  return next;
}
