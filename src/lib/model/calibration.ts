/**
 * Router calibration: does the router's ranking predict which experts help?
 *
 * For each token t of a text and each layer, swap one expert and measure the
 * change in log p(the token after t), the model's own loss at t:
 *   drop rank r (r = 1…k): the router's r-th choice is replaced by its
 *     (k+1)-th, the best expert it left out. A calibrated router loses most
 *     when its first choice goes.
 *   add rank r (r = k+1…k+m): its k-th (weakest) choice is replaced by its
 *     r-th. A calibrated router loses more the further down the list the
 *     replacement comes from, and rarely gains (Δ > 0: an expert it left out
 *     would have predicted this token better).
 *
 * The effect at t depends on tokens 0…t only (the model is causal), so each
 * swap runs on the prefix ids[0..t+1] (the token after t rides along as the
 * target, and cannot change position t's prediction); the prefixes of one t
 * go in one batch, with one unforced row whose log p is the baseline (same
 * batch, same arithmetic: the Δ carries no batch-size noise).
 */
import { ownRoute } from "./route-overrides.js";
import { rankedExperts, type Forward, type ForwardOutput } from "./counterfactual.js";

export interface CalibrationOptions {
  /** The model's top-k. */
  topK: number;
  /** Alternatives below the route: ranks k+1 … k+alternatives are swapped in. */
  alternatives: number;
  /** Tokens of the text whose next-token loss is measured (from the start). */
  tokens: number;
}

/** One swap's place in the sweep. */
export interface Swap {
  kind: "drop" | "add";
  /** The rank (1 = the router's first choice) of the expert dropped or added. */
  rank: number;
}

export interface CalibrationResult {
  options: CalibrationOptions;
  layers: number;
  /** swaps in order: drop 1…k, then add k+1…k+m. */
  swaps: Swap[];
  /** Δ log p, [tokens, layers, swaps]. */
  delta: Float64Array;
  /** Forward passes run and token positions computed (for the bench). */
  passes: number;
  tokenPositions: number;
}

export function swapsOf(topK: number, alternatives: number): Swap[] {
  return [
    ...Array.from({ length: topK }, (_, i) => ({ kind: "drop" as const, rank: i + 1 })),
    ...Array.from({ length: alternatives }, (_, i) => ({ kind: "add" as const, rank: topK + 1 + i })),
  ];
}

/**
 * Runs the sweep over `ids` (one sequence). `plain` is its plain forward pass
 * (the ranking of the experts comes from it; a prefix's routing is the full
 * sequence's, as the model is causal). `onProgress(done, total)` after each batch.
 */
export async function calibrationSweep(
  forward: Forward,
  ids: readonly number[],
  plain: ForwardOutput,
  options: CalibrationOptions,
  onProgress: (done: number, total: number) => void = () => {},
  signal?: { cancelled: boolean },
): Promise<CalibrationResult> {
  const [L, , S, E] = plain.dims;
  const { topK: k, alternatives: m } = options;
  if (k + m > E) throw new Error(`${k} + ${m} alternatives is more than the ${E} experts`);
  const T = Math.min(options.tokens, S - 1);
  if (T < 1) throw new Error("the text needs at least two tokens: the first to route, the second to predict");
  const swaps = swapsOf(k, m);
  const delta = new Float64Array(T * L * swaps.length);
  let passes = 0;
  let tokenPositions = 0;
  for (let t = 0; t < T; t++) {
    if (signal?.cancelled) throw new Error("cancelled");
    const prefix = ids.slice(0, t + 2);
    const rows = 1 + L * swaps.length;
    const forced = ownRoute(L, rows, t + 2, k);
    for (let l = 0; l < L; l++) {
      const ranked = rankedExperts(plain, l, t);
      swaps.forEach((swap, s) => {
        const row = 1 + l * swaps.length + s;
        // drop rank r: slot r−1 gets rank k+1; add rank r: slot k−1 gets rank r
        const [slot, expert] = swap.kind === "drop" ? [swap.rank - 1, ranked[k]] : [k - 1, ranked[swap.rank - 1]];
        forced.data[((l * rows + row) * (t + 2) + t) * k + slot] = expert;
      });
    }
    const out = await forward(
      Array.from({ length: rows }, () => prefix),
      { forcedExperts: forced },
    );
    passes++;
    tokenPositions += rows * (t + 2);
    // readout.logProbs[row · (t+2) + t] = log p(ids[t+1]) at position t
    const logProb = (row: number) => out.next.logProbs[row * (t + 2) + t];
    const base = logProb(0);
    for (let l = 0; l < L; l++)
      for (let s = 0; s < swaps.length; s++)
        delta[(t * L + l) * swaps.length + s] = logProb(1 + l * swaps.length + s) - base;
    onProgress(t + 1, T);
  }
  return { options: { ...options, tokens: T }, layers: L, swaps, delta, passes, tokenPositions };
}

/** The sweep, read: what a reader compares across checkpoints. */
export interface CalibrationSummary {
  /** Mean Δ log p per swap (over tokens and layers), in `swaps` order, and per layer [layers][swaps]. */
  meanDelta: number[];
  meanDeltaByLayer: number[][];
  /**
   * Among the added alternatives: the share of pairs (r₁ < r₂) where the
   * higher-ranked expert gave the better log p. 0.5: the router's order below
   * its top-k says nothing about which experts help; 1: it says everything.
   */
  addOrderAgreement: number;
  /** The same among the dropped experts: dropping the higher-ranked one hurt more. */
  dropOrderAgreement: number;
  /** Share of (token, layer) where some left-out alternative beat the router's k-th choice (Δ > 0). */
  betterLeftOut: number;
  /** Mean Δ of replacing the router's first choice by its (k+1)-th: what its top expert is worth. */
  firstChoiceWorth: number;
  /** Standard errors over the (token, layer) cells (they are not independent across layers: a lower bound on the spread). */
  firstChoiceWorthSE: number;
  addOrderAgreementSE: number;
  dropOrderAgreementSE: number;
  betterLeftOutSE: number;
  /** (token, layer) cells measured. */
  cells: number;
}

/** Several texts' sweeps (same model, options and swaps) as one, tokens after tokens. */
export function mergeCalibration(results: readonly CalibrationResult[]): CalibrationResult {
  if (results.length === 0) throw new Error("no sweep to merge");
  const [first] = results;
  const tokens = results.reduce((n, r) => n + r.options.tokens, 0);
  const delta = new Float64Array(results.reduce((n, r) => n + r.delta.length, 0));
  let at = 0;
  for (const r of results) {
    if (r.layers !== first.layers || r.swaps.length !== first.swaps.length)
      throw new Error("sweeps of different models or swaps cannot be merged");
    delta.set(r.delta, at);
    at += r.delta.length;
  }
  return {
    options: { ...first.options, tokens },
    layers: first.layers,
    swaps: first.swaps,
    delta,
    passes: results.reduce((n, r) => n + r.passes, 0),
    tokenPositions: results.reduce((n, r) => n + r.tokenPositions, 0),
  };
}

/** Mean and standard error of the mean. */
function meanAndSE(values: readonly number[]): [number, number] {
  const n = values.length;
  if (n === 0) return [NaN, NaN];
  const mean = values.reduce((a, b) => a + b, 0) / n;
  if (n === 1) return [mean, NaN];
  const variance = values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1);
  return [mean, Math.sqrt(variance / n)];
}

export function summarizeCalibration(result: CalibrationResult): CalibrationSummary {
  const { delta, swaps, layers: L } = result;
  const T = result.options.tokens;
  const W = swaps.length;
  const at = (t: number, l: number, s: number) => delta[(t * L + l) * W + s];
  const meanDeltaByLayer = Array.from({ length: L }, (_, l) =>
    swaps.map((_, s) => {
      let sum = 0;
      for (let t = 0; t < T; t++) sum += at(t, l, s);
      return sum / T;
    }),
  );
  const meanDelta = swaps.map((_, s) => meanDeltaByLayer.reduce((sum, row) => sum + row[s], 0) / L);
  const add = swaps.flatMap((swap, s) => (swap.kind === "add" ? [s] : []));
  const drop = swaps.flatMap((swap, s) => (swap.kind === "drop" ? [s] : []));
  // per (token, layer) cell: the share of ordered pairs the router's ranking gets right (ties skipped)
  const agreement = (indices: number[], t: number, l: number, better: (a: number, b: number) => boolean) => {
    let agree = 0,
      pairs = 0;
    for (let i = 0; i < indices.length; i++)
      for (let j = i + 1; j < indices.length; j++) {
        const [a, b] = [at(t, l, indices[i]), at(t, l, indices[j])];
        if (a === b) continue; // a tie says nothing either way
        pairs++;
        if (better(a, b)) agree++;
      }
    return pairs ? agree / pairs : null;
  };
  const addCells: number[] = [],
    dropCells: number[] = [],
    betterCells: number[] = [],
    firstCells: number[] = [];
  for (let t = 0; t < T; t++)
    for (let l = 0; l < L; l++) {
      const addShare = agreement(add, t, l, (a, b) => a > b); // the higher-ranked addition helps more
      const dropShare = agreement(drop, t, l, (a, b) => a < b); // dropping the higher-ranked one hurts more
      if (addShare !== null) addCells.push(addShare);
      if (dropShare !== null) dropCells.push(dropShare);
      betterCells.push(add.some((s) => at(t, l, s) > 0) ? 1 : 0);
      if (drop.length) firstCells.push(at(t, l, drop[0]));
    }
  const [addOrderAgreement, addOrderAgreementSE] = meanAndSE(addCells);
  const [dropOrderAgreement, dropOrderAgreementSE] = meanAndSE(dropCells);
  const [betterLeftOut, betterLeftOutSE] = meanAndSE(betterCells);
  const [firstChoiceWorth, firstChoiceWorthSE] = meanAndSE(firstCells);
  return {
    meanDelta,
    meanDeltaByLayer,
    addOrderAgreement,
    dropOrderAgreement,
    betterLeftOut,
    firstChoiceWorth,
    firstChoiceWorthSE,
    addOrderAgreementSE,
    dropOrderAgreementSE,
    betterLeftOutSE,
    cells: T * L,
  };
}

/** Tokens swept per text and alternatives below the route: the playground's sweep (its build-time copy and live run). */
export const PLAYGROUND_CALIBRATION = { alternatives: 8, tokens: 16 } as const;

/**
 * The texts the playground's sweep reads: for each sample (by name, sorted),
 * the first `tokens + 1` tokens after its first line (a file's first line is
 * often a licence or a title).
 */
export function calibrationTexts(
  encode: (text: string) => number[],
  samples: Record<string, string>,
  tokens: number,
): { names: string[]; texts: number[][] } {
  const names = Object.keys(samples).sort();
  const texts = names.map((name) => {
    const text = samples[name];
    return encode(text.slice(text.indexOf("\n") + 1)).slice(0, tokens + 1);
  });
  return { names, texts };
}
