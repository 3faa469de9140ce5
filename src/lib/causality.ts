/**
 * Does a router let later tokens change an earlier token's expert? In a
 * decoder, token t must not depend on tokens after it; a routing rule that
 * looks across the batch can break that (the loss-free paper calls it
 * future-token leakage). Token choice with a bias fixed from earlier batches
 * is causal: each row is routed alone. Expert choice is not: each expert
 * takes its top-C tokens of the whole batch, so a later token that an expert
 * prefers pushes an earlier one out.
 *
 * `checkCausality` perturbs every token after position t and reports whether
 * token t's set of experts changed, for every t it tries.
 */
import { biasedTopKRow, softmaxRow, topKRow } from "./routing.js";
import { uniformGenerator } from "./random.js";
import { solveQuantileBias } from "./quantile-balancing.js";

/** The softmax of every row of a `tokens × experts` batch. */
function softmaxRows(logits: Float64Array, tokens: number, experts: number): Float64Array {
  const p = new Float64Array(tokens * experts);
  for (let t = 0; t < tokens; t++) softmaxRow(logits, t * experts, experts, p.subarray(t * experts));
  return p;
}

/** Routes one batch (tokens × experts logits, one layer) into each token's set of experts. */
export type BatchRouter = (logits: Float64Array, tokens: number, experts: number) => number[][];

/** Token choice: each row's top-k of p + bias, the bias fixed before the batch (from earlier batches). */
export function tokenChoiceRouter(topK: number, bias?: ArrayLike<number>): BatchRouter {
  return (logits, tokens, experts) => {
    const p = new Float64Array(experts);
    const scores = new Float64Array(experts);
    const chosen = new Int32Array(topK);
    return Array.from({ length: tokens }, (_, t) => {
      softmaxRow(logits, t * experts, experts, p);
      biasedTopKRow(p, bias, 0, experts, topK, scores, chosen);
      return Array.from(chosen).sort((a, b) => a - b);
    });
  };
}

/**
 * Expert choice (Zhou et al. 2022): each expert takes the `capacity` tokens
 * of the batch with the highest router probability for it (ties: the earlier
 * token); a token's experts are those that took it (possibly none).
 */
export function expertChoiceRouter(capacity: number): BatchRouter {
  return (logits, tokens, experts) => {
    const p = softmaxRows(logits, tokens, experts);
    const sets: number[][] = Array.from({ length: tokens }, () => []);
    const column = new Float64Array(tokens);
    const picked = new Int32Array(Math.min(capacity, tokens));
    for (let e = 0; e < experts; e++) {
      for (let t = 0; t < tokens; t++) column[t] = p[t * experts + e];
      topKRow(column, tokens, picked.length, picked);
      for (const t of picked) sets[t].push(e);
    }
    return sets;
  };
}

/**
 * Quantile balancing solved on the same batch (the per-batch exact bias of
 * quantile-balancing.ts, applied to the batch it was computed from): every
 * expert gets exactly T·k/E tokens, and every token's route depends on the
 * whole batch, later tokens included. Megatron-LM applies the bias from the
 * previous global batch instead, which keeps it causal.
 */
export function sameBatchQuantileRouter(topK: number): BatchRouter {
  return (logits, tokens, experts) => {
    const p = softmaxRows(logits, tokens, experts);
    const { bias } = solveQuantileBias(p, tokens, experts, topK);
    const scores = new Float64Array(experts);
    const chosen = new Int32Array(topK);
    return Array.from({ length: tokens }, (_, t) => {
      biasedTopKRow(p.subarray(t * experts, (t + 1) * experts), bias, 0, experts, topK, scores, chosen);
      return Array.from(chosen).sort((a, b) => a - b);
    });
  };
}

export interface CausalityReport {
  /** Positions t whose experts changed when only later tokens changed. */
  readonly leakingPositions: number[];
  /** Positions tried. */
  readonly tried: number;
  readonly causal: boolean;
}

/**
 * For each tried position t, replaces the logits of every token after t with
 * fresh random ones (the same scale as the batch's) and routes again.
 */
export function checkCausality(
  router: BatchRouter,
  logits: Float64Array,
  tokens: number,
  experts: number,
  options: { positions?: readonly number[]; seed?: number; trials?: number } = {},
): CausalityReport {
  const positions = options.positions ?? Array.from({ length: tokens - 1 }, (_, t) => t);
  const random = uniformGenerator(options.seed ?? 1);
  let scale = 0;
  for (const v of logits) scale = Math.max(scale, Math.abs(v));
  const base = router(logits, tokens, experts);
  const leaking: number[] = [];
  for (const t of positions) {
    for (let trial = 0; trial < (options.trials ?? 3); trial++) {
      const changed = Float64Array.from(logits);
      for (let i = (t + 1) * experts; i < changed.length; i++) changed[i] = (2 * random() - 1) * (scale || 1) * 2;
      const routed = router(changed, tokens, experts);
      if (routed[t].join(",") !== base[t].join(",")) {
        leaking.push(t);
        break;
      }
    }
  }
  return { leakingPositions: leaking, tried: positions.length, causal: leaking.length === 0 };
}
