/**
 * Phase one of every loss: a single pass over the logits that computes each
 * token's softmax, top-k and logsumexp, and keeps only what the losses need,
 * summed per layer and per sequence. Every loss variant (any granularity, any
 * micro-batch size, any coefficient) is then a cheap reduction of this
 * summary, of size layers × sequences × experts: a slider never re-runs the
 * softmax.
 */
import { validateBatch } from "./validate.js";
import { expNonPositive } from "./fast-exp.js";
import type { BatchLayout, RouterLogits } from "./types.js";
import type { SequenceGroup } from "./batching.js";

export interface RoutingSummary {
  readonly layers: number;
  readonly experts: number;
  readonly topK: number;
  readonly tokens: number;
  readonly sequenceLengths: readonly number[];
  /** `Σ_{t∈s} p[l][t][e]`: layers × sequences × experts, float64. */
  readonly probSum: Float64Array;
  /** `#{t∈s : e ∈ S[l][t]}`: layers × sequences × experts, routing slots. */
  readonly load: Float64Array;
  /** `Σ_{t∈s} lse[l][t]²`: layers × sequences. */
  readonly logSumExpSquareSum: Float64Array;
  /** Largest logit seen, for the z-loss page's overflow warning. */
  readonly maxLogit: number;
}

/** Computes the summary; the layout defaults to one sequence holding every token. */
export function summarize(logits: RouterLogits, topK: number, sequenceLengths: readonly number[] = [logits.tokens]): RoutingSummary {
  validateBatch(logits, { topK, sequenceLengths });
  const { layers, tokens, experts, data } = logits;
  const sequences = sequenceLengths.length;
  const probSum = new Float64Array(layers * sequences * experts);
  const load = new Float64Array(layers * sequences * experts);
  const logSumExpSquareSum = new Float64Array(layers * sequences);
  const exps = new Float64Array(experts);
  const chosen = new Int32Array(topK);
  let maxLogit = -Infinity;

  for (let l = 0; l < layers; l++) {
    let row = l * tokens * experts;
    for (let s = 0; s < sequences; s++) {
      const base = (l * sequences + s) * experts;
      let lseSquares = 0;
      for (let t = 0; t < sequenceLengths[s]; t++, row += experts) {
        let max = -Infinity;
        for (let e = 0; e < experts; e++) if (data[row + e] > max) max = data[row + e];
        let sum = 0;
        for (let e = 0; e < experts; e++) {
          const z = expNonPositive(data[row + e] - max);
          exps[e] = z;
          sum += z;
        }
        const inv = 1 / sum;
        // Top-k on the unnormalised exps: the same order as p, and ties still
        // fall to the lower index; inlined here because this is the hot loop.
        let filled = 0;
        for (let e = 0; e < experts; e++) {
          const z = exps[e];
          probSum[base + e] += z * inv;
          if (filled === topK && !(z > exps[chosen[topK - 1]])) continue;
          let i = filled < topK ? filled++ : topK - 1;
          while (i > 0 && z > exps[chosen[i - 1]]) {
            chosen[i] = chosen[i - 1];
            i--;
          }
          chosen[i] = e;
        }
        for (let i = 0; i < topK; i++) load[base + chosen[i]] += 1;
        const lse = max + Math.log(sum); // sum ≥ 1: the max term is exp(0)
        lseSquares += lse * lse;
        if (max > maxLogit) maxLogit = max;
      }
      logSumExpSquareSum[l * sequences + s] = lseSquares;
    }
  }
  return { layers, experts, topK, tokens, sequenceLengths: [...sequenceLengths], probSum, load, logSumExpSquareSum, maxLogit };
}

/** Layout of a summary, for callers that need it back. */
export function summaryLayout(summary: RoutingSummary): BatchLayout {
  return { topK: summary.topK, sequenceLengths: summary.sequenceLengths };
}

/** Sums of one layer over a group of sequences. */
export interface GroupTotals {
  readonly tokens: number;
  /** `Σ_t p[t][e]`, per expert. */
  readonly probSum: Float64Array;
  /** `c[e]`, per expert. */
  readonly load: Float64Array;
}

export function groupTotals(summary: RoutingSummary, layer: number, group: SequenceGroup): GroupTotals {
  const { experts, sequenceLengths } = summary;
  const sequences = sequenceLengths.length;
  const probSum = new Float64Array(experts);
  const load = new Float64Array(experts);
  let tokens = 0;
  for (let s = group.first; s < group.end; s++) {
    tokens += sequenceLengths[s];
    const base = (layer * sequences + s) * experts;
    for (let e = 0; e < experts; e++) {
      probSum[e] += summary.probSum[base + e];
      load[e] += summary.load[base + e];
    }
  }
  return { tokens, probSum, load };
}
