/**
 * Routing: softmax over experts, top-k with a reproducible tie rule, and the
 * gate weights of OLMoE (as they are) and Mixtral (renormalised over the top-k).
 *
 * Every function here works on one row (one token of one layer) or loops over
 * rows of a flat `layers × tokens × experts` array.
 */
import type { FloatArray } from "./types.js";

/**
 * Softmax of `logits[offset .. offset+experts)` into `out[0 .. experts)`,
 * computed stably (the row max is subtracted first). Returns the row's
 * logsumexp, `log Σ_e exp(x_e)`, which the z-loss needs.
 */
export function softmaxRow(
  logits: ArrayLike<number>,
  offset: number,
  experts: number,
  out: Float64Array | Float32Array,
): number {
  let max = -Infinity;
  for (let e = 0; e < experts; e++) {
    const v = logits[offset + e];
    if (v > max) max = v;
  }
  let sum = 0;
  for (let e = 0; e < experts; e++) {
    const z = Math.exp(logits[offset + e] - max);
    out[e] = z;
    sum += z;
  }
  const inv = 1 / sum;
  for (let e = 0; e < experts; e++) out[e] *= inv;
  return max + Math.log(sum);
}

/** Stable `log Σ_e exp(x_e)` of one row. */
export function logSumExpRow(logits: ArrayLike<number>, offset: number, experts: number): number {
  let max = -Infinity;
  for (let e = 0; e < experts; e++) if (logits[offset + e] > max) max = logits[offset + e];
  let sum = 0;
  for (let e = 0; e < experts; e++) sum += Math.exp(logits[offset + e] - max);
  return max + Math.log(sum);
}

/**
 * The naive `log(sum(exp(x)))` that MegaBlocks' OLMoE branch computes, in
 * float32 arithmetic: it overflows to Infinity once a logit passes about 88.7.
 * Kept only so the z-loss page can show the failure beside the stable value.
 */
export function naiveLogSumExpFloat32(logits: ArrayLike<number>, offset: number, experts: number): number {
  let sum = 0;
  for (let e = 0; e < experts; e++) sum = Math.fround(sum + Math.fround(Math.exp(Math.fround(logits[offset + e]))));
  return Math.fround(Math.log(sum));
}

/**
 * Indices of the `k` largest `scores[0 .. experts)`, largest first. Ties go to
 * the lower expert index: experts are scanned in increasing order and a
 * newcomer must be strictly greater to pass an incumbent.
 */
export function topKRow(
  scores: ArrayLike<number>,
  experts: number,
  k: number,
  out: Int32Array | number[],
  outOffset = 0,
): void {
  // Insertion into a small sorted list; k is at most a few dozen in practice.
  let filled = 0;
  for (let e = 0; e < experts; e++) {
    const v = scores[e];
    if (filled === k && !(v > scores[out[outOffset + k - 1]])) continue;
    let i = filled < k ? filled++ : k - 1;
    while (i > 0 && v > scores[out[outOffset + i - 1]]) {
      out[outOffset + i] = out[outOffset + i - 1];
      i--;
    }
    out[outOffset + i] = e;
  }
}

/**
 * Auxiliary-loss-free selection for one token: the top-k of `p + bias`, with
 * `bias` read from `bias[biasOffset .. biasOffset + experts)` (absent: plain
 * top-k of p). `scores` is scratch space of `experts` values.
 */
export function biasedTopKRow(
  p: ArrayLike<number>,
  bias: ArrayLike<number> | undefined,
  biasOffset: number,
  experts: number,
  k: number,
  scores: Float64Array,
  out: Int32Array | number[],
  outOffset = 0,
): void {
  for (let e = 0; e < experts; e++) scores[e] = p[e] + (bias ? bias[biasOffset + e] : 0);
  topKRow(scores, experts, k, out, outOffset);
}

/** How the weights of the chosen experts are formed. */
export type GateStyle = "olmoe" | "mixtral";

/**
 * Gate weights of the chosen experts for one token, in the order of `chosen`.
 * OLMoE (`norm_topk_prob = false`) keeps `p_e` as is: they sum to less than 1.
 * Mixtral renormalises over the chosen experts, which equals a softmax over
 * their logits: with k = 1 the weight is always exactly 1.
 */
export function gateWeights(probs: ArrayLike<number>, chosen: ArrayLike<number>, style: GateStyle): number[] {
  const weights = Array.from(chosen, (e) => probs[e]);
  if (style === "mixtral") {
    const total = weights.reduce((a, b) => a + b, 0);
    for (let i = 0; i < weights.length; i++) weights[i] /= total;
  }
  return weights;
}

/** `log(1 + exp(x))`, stable for large |x|. */
export function softplus(x: number): number {
  return x > 30 ? x : x < -30 ? Math.exp(x) : Math.log1p(Math.exp(x));
}

/**
 * Noisy top-k logits (Shazeer et al. 2017): `x + N(0,1) · softplus(x · W_noise)`.
 * `noiseLogits` holds `x · W_noise` for the same rows; `normal` draws N(0,1)
 * from a seeded generator so that a figure can be reproduced.
 */
export function noisyLogits(clean: FloatArray, noiseLogits: ArrayLike<number>, normal: () => number): Float64Array {
  const out = new Float64Array(clean.length);
  for (let i = 0; i < clean.length; i++) out[i] = clean[i] + normal() * softplus(noiseLogits[i]);
  return out;
}
