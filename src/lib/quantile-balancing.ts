/**
 * Quantile balancing (Su, "MoE Odyssey #6", kexue.fm/archives/11619; Megatron-LM
 * PR #5349, `megatron/core/transformer/moe/moe_utils.py` `qb_dual_update`):
 * the bias `b` for which the top-k of `s + b` gives every expert exactly
 * `C = T·k/E` of a batch's tokens.
 *
 * It is the dual of the balanced assignment "each token takes k experts, each
 * expert takes C tokens". Two quantiles alternate:
 *   - each token's cutoff `α_t` is its (k+1)-th largest `s_t + b`: an expert
 *     is chosen when `s_te + b_e > α_t`;
 *   - each expert's bias is set so that exactly C tokens clear their cutoff:
 *     `b_e` between the C-th and (C+1)-th smallest of `α_t − s_te` over tokens.
 * Megatron-LM makes one such dual step per global batch (starting from the
 * last batch's bias); iterated on one batch it reaches the fixed point, where
 * every expert's load is exactly C. Megatron-LM also requires `T·k % E = 0`
 * and no group-limited routing, as here.
 */
import { topKRow } from "./routing.js";

export interface QuantileSolution {
  /** One bias per expert, re-centred to mean 0 (a shift of every bias changes no choice). */
  readonly bias: Float64Array;
  /** Each expert's load under top-k of `s + bias`. */
  readonly load: Float64Array;
  /** Dual steps taken. */
  readonly iterations: number;
  /** Whether every load equals `T·k/E`. */
  readonly exact: boolean;
}

export interface QuantileOptions {
  /** Where to start (e.g. the last batch's bias); zeros if absent. */
  readonly init?: ArrayLike<number>;
  /** Dual steps at most; 1 is Megatron-LM's single step per batch. */
  readonly maxIterations?: number;
}

/**
 * Solves for the balancing bias of one batch of selection scores (`tokens ×
 * experts`, row-major: softmax probabilities, sigmoid scores or raw logits).
 */
export function solveQuantileBias(
  scores: ArrayLike<number>,
  tokens: number,
  experts: number,
  topK: number,
  options: QuantileOptions = {},
): QuantileSolution {
  if ((tokens * topK) % experts !== 0)
    throw new Error(
      `quantile balancing needs T·k divisible by E (Megatron-LM asserts it): ${tokens}·${topK} = ${tokens * topK} is not a multiple of ${experts}`,
    );
  if (topK >= experts) throw new Error(`quantile balancing needs k < E (k = ${topK}, E = ${experts})`);
  const capacity = (tokens * topK) / experts;
  const maxIterations = options.maxIterations ?? 200;
  const bias = Float64Array.from(options.init ?? new Float64Array(experts));
  const column = new Float64Array(tokens);
  const row = new Float64Array(experts);
  const top = new Int32Array(topK + 1);
  const load = new Float64Array(experts);
  // Each token's k+1 best experts by biased score, best first, and the loads
  // of its top-k, kept up to date as biases move.
  const best = new Int32Array(tokens * (topK + 1));
  const refresh = (t: number, sign: number): void => {
    const o = t * (topK + 1);
    if (sign < 0) for (let i = 0; i < topK; i++) load[best[o + i]]--;
    for (let j = 0; j < experts; j++) row[j] = scores[t * experts + j] + bias[j];
    topKRow(row, experts, topK + 1, best, o);
    for (let i = 0; i < topK; i++) load[best[o + i]]++;
  };
  load.fill(0);
  for (let t = 0; t < tokens; t++) refresh(t, +1);
  const balanced = (): boolean => {
    for (let e = 0; e < experts; e++) if (load[e] !== capacity) return false;
    return true;
  };
  let iterations = 0;
  while (!balanced() && iterations < maxIterations) {
    // A sweep of exact coordinate steps (Gauss–Seidel): expert e, the others
    // held, enters token t's top-k when s_te + b_e beats the k-th largest
    // biased score among the other experts. Put b_e so that exactly C tokens
    // pass. Experts already at C move to the middle of their gap too: that
    // slack is what lets the sweeps converge (fixing only the experts off
    // their load can cycle a token between two of them).
    for (let e = 0; e < experts; e++) {
      for (let t = 0; t < tokens; t++) {
        const o = t * (topK + 1);
        let inTopK = false;
        for (let i = 0; i < topK; i++) if (best[o + i] === e) inTopK = true;
        // the k-th best among the others: the (k+1)-th overall if e is in the top-k, else the k-th
        const rival = best[o + (inTopK ? topK : topK - 1)];
        column[t] = scores[t * experts + rival] + bias[rival] - scores[t * experts + e];
      }
      // Tokens with a margin below b_e choose e: b_e between the C-th and (C+1)-th smallest margins.
      bias[e] = capacity >= tokens ? Math.max(...column) + 1 : midpointOfOrder(column, capacity);
      // Refresh the tokens whose k+1 best can have changed: e was among them, or now beats the last of them.
      for (let t = 0; t < tokens; t++) {
        const o = t * (topK + 1);
        let listed = false;
        for (let i = 0; i <= topK; i++) if (best[o + i] === e) listed = true;
        const last = best[o + topK];
        if (listed || scores[t * experts + e] + bias[e] > scores[t * experts + last] + bias[last]) refresh(t, -1);
      }
    }
    iterations++;
  }
  recentre(bias);
  const exact = loadsOf(scores, tokens, experts, topK, bias, row, top, load) === 0;
  return { bias, load, iterations, exact };
}

/**
 * Halfway between the n-th and (n+1)-th smallest values (1-based n < length),
 * by quickselect; reorders `values`.
 */
export function midpointOfOrder(values: Float64Array, n: number): number {
  let lo = 0;
  let hi = values.length - 1;
  const target = n; // 0-based index of the (n+1)-th smallest
  while (lo < hi) {
    const pivot = values[(lo + hi) >> 1];
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (values[i] < pivot) i++;
      while (values[j] > pivot) j--;
      if (i <= j) {
        const v = values[i];
        values[i++] = values[j];
        values[j--] = v;
      }
    }
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else break;
  }
  // values[target] is the (n+1)-th smallest; everything before it is ≤ it: the n-th smallest is their maximum.
  let below = -Infinity;
  for (let m = 0; m < target; m++) if (values[m] > below) below = values[m];
  return 0.5 * (below + values[target]);
}

/** Fills `load` with top-k of `s + bias` and returns Σ|load − C|. */
function loadsOf(
  scores: ArrayLike<number>,
  tokens: number,
  experts: number,
  topK: number,
  bias: Float64Array,
  row: Float64Array,
  top: Int32Array,
  load: Float64Array,
): number {
  load.fill(0);
  for (let t = 0; t < tokens; t++) {
    for (let e = 0; e < experts; e++) row[e] = scores[t * experts + e] + bias[e];
    topKRow(row, experts, topK, top);
    for (let i = 0; i < topK; i++) load[top[i]]++;
  }
  const capacity = (tokens * topK) / experts;
  let error = 0;
  for (let e = 0; e < experts; e++) error += Math.abs(load[e] - capacity);
  return error;
}

/** Subtracts the mean (torchtitan re-centres its expert bias the same way: the choice is unchanged). */
export function recentre(values: Float64Array): Float64Array {
  let mean = 0;
  for (const v of values) mean += v;
  mean /= values.length;
  for (let i = 0; i < values.length; i++) values[i] -= mean;
  return values;
}
