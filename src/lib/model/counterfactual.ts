/**
 * Counterfactual routing on OLMoE-mini: run the model with a route it did not
 * choose and read what changes in its next-token predictions. Three views use
 * it: one forced expert for one token (the playground's panel), the router's
 * calibration (every alternative, ranked by router probability, swapped in),
 * and routing consistency (the same text routed twice with a tiny numeric
 * difference, then with the first run's route replayed).
 *
 * Everything here takes a `Forward`: the page's model worker
 * (`ModelClient.forward` with `readNextToken`), or onnxruntime-node in the
 * tests, the build-time loader and the bench; the same code runs in all.
 */
import { ownRoute, type Dense, type NextTokenReadout, type RouteOverrides } from "./route-overrides.js";

/** What a forward pass of the full graph hands back. */
export interface ForwardOutput {
  /** router_logits, [L, B, S, E]. */
  router: Float32Array;
  dims: readonly number[];
  /** expert_bias, [L, E] (zeros but for loss-free); null for files without it. */
  bias: Float32Array | null;
  next: NextTokenReadout;
}

/** A batch of equal-length sequences through the full graph, under optional overrides. */
export type Forward = (sequences: readonly (readonly number[])[], overrides?: RouteOverrides) => Promise<ForwardOutput>;

/**
 * Every expert of one token in one layer, best first, as the model ranks them
 * (router probability plus the selection bias: the loss-free checkpoint's
 * choice). The first k are its route, in the graph's slot order.
 */
export function rankedExperts(out: ForwardOutput, layer: number, row: number): Int32Array {
  const [, B, S, E] = out.dims;
  const offset = (layer * B * S + row) * E;
  const logits = out.router.subarray(offset, offset + E);
  let max = -Infinity;
  for (const v of logits) if (v > max) max = v;
  let sum = 0;
  const p = new Float64Array(E);
  for (let e = 0; e < E; e++) sum += p[e] = Math.exp(logits[e] - max);
  const score = new Float64Array(E);
  for (let e = 0; e < E; e++) score[e] = p[e] / sum + (out.bias ? out.bias[layer * E + e] : 0);
  // stable: equal scores keep the lower index first, as ONNX TopK does
  return Int32Array.from(Array.from({ length: E }, (_, e) => e).sort((a, b) => score[b] - score[a] || a - b));
}

/** The route the model chose, [L, B, S, k], in slot order. */
export function chosenRoute(out: ForwardOutput, topK: number): Dense<Int32Array> {
  const [L, B, S] = out.dims;
  const route = ownRoute(L, B, S, topK);
  for (let l = 0; l < L; l++)
    for (let row = 0; row < B * S; row++)
      route.data.set(rankedExperts(out, l, row).subarray(0, topK), (l * B * S + row) * topK);
  return route;
}

/** How the playground picks the expert that replaces one of the token's experts. */
export type Replacement =
  | { kind: "next-best" }
  | { kind: "least-loaded" }
  | { kind: "random"; seed: number }
  | { kind: "expert"; expert: number };

/** The expert a replacement rule gives, or a sentence saying why it cannot be used. */
export function replacementExpert(
  rule: Replacement,
  out: ForwardOutput,
  topK: number,
  layer: number,
  token: number,
): { expert: number } | { problem: string } {
  const [, B, S, E] = out.dims;
  const ranked = rankedExperts(out, layer, token);
  const route = ranked.subarray(0, topK);
  const unchosen = Array.from(ranked.subarray(topK));
  switch (rule.kind) {
    case "next-best":
      return { expert: unchosen[0] };
    case "least-loaded": {
      // tokens routed to each expert in this layer, over the whole batch
      const load = new Int32Array(E);
      for (let row = 0; row < B * S; row++) for (const e of rankedExperts(out, layer, row).subarray(0, topK)) load[e]++;
      return { expert: unchosen.reduce((best, e) => (load[e] < load[best] ? e : best), unchosen[0]) };
    }
    case "random": {
      // a small deterministic generator, so that a reader can come back to the same draw
      const x = Math.sin((rule.seed + 1) * 12.9898 + layer * 78.233 + token * 37.719) * 43758.5453;
      return { expert: unchosen[Math.floor((x - Math.floor(x)) * unchosen.length)] };
    }
    case "expert": {
      const e = rule.expert;
      if (!Number.isInteger(e) || e < 0 || e >= E)
        return { problem: `expert ${e} is out of range: OLMoE-mini has experts 0–${E - 1}` };
      const slot = route.indexOf(e);
      if (slot >= 0)
        return {
          problem: `expert ${e} is already one of this token's ${topK} experts (its choice no. ${slot + 1}); a route needs ${topK} different experts`,
        };
      return { expert: e };
    }
  }
}

/** One token's next-token prediction, read from a forward pass. */
export interface Prediction {
  /** log p(the actual next token). */
  logProb: number;
  /** The top predictions: token ids and log-probabilities, most likely first. */
  top: { id: number; logProb: number }[];
}

export function predictionAt(next: NextTokenReadout, row: number): Prediction {
  const top = Array.from({ length: next.top }, (_, j) => ({
    id: next.topIds[row * next.top + j],
    logProb: next.topLogProbs[row * next.top + j],
  }));
  return { logProb: next.logProbs[row], top };
}

export interface CounterfactualResult {
  layer: number;
  token: number;
  /** The slot replaced (0 = the router's first choice) and the experts out and in. */
  slot: number;
  expertOut: number;
  expertIn: number;
  /** The router's probability of each (the gate the forced expert now gets). */
  gateOut: number;
  gateIn: number;
  before: Prediction;
  after: Prediction;
  /** log p after − before, for the token's own next token. */
  deltaLogProb: number;
  /** Mean Δ log p over the later positions of the sequence (they attend to this token), NaN if none. */
  laterDelta: number;
}

/**
 * Replaces the `slot`-th expert of `token` in `layer` by `expertIn` and reruns
 * `ids` (one sequence). `baseline` is the plain forward pass of the same ids.
 */
export async function forceOneExpert(
  forward: Forward,
  ids: readonly number[],
  baseline: ForwardOutput,
  topK: number,
  layer: number,
  token: number,
  slot: number,
  expertIn: number,
): Promise<CounterfactualResult> {
  const [L, B, S, E] = baseline.dims;
  if (B !== 1 || S !== ids.length) throw new Error("the baseline is not this sequence's forward pass");
  if (layer < 0 || layer >= L || token < 0 || token >= S || slot < 0 || slot >= topK)
    throw new Error(`layer ${layer}, token ${token}, slot ${slot}: outside the [${L}, ${S}, ${topK}] route`);
  const ranked = rankedExperts(baseline, layer, token);
  const forced = ownRoute(L, 1, S, topK);
  forced.data[(layer * S + token) * topK + slot] = expertIn;
  const after = await forward([ids], { forcedExperts: forced });
  const gate = (e: number) => {
    const offset = (layer * S + token) * E;
    const row = baseline.router.subarray(offset, offset + E);
    const max = Math.max(...row);
    let sum = 0;
    for (const v of row) sum += Math.exp(v - max);
    return Math.exp(row[e] - max) / sum;
  };
  let later = 0;
  let count = 0;
  for (let t = token + 1; t < S - 1; t++) {
    later += after.next.logProbs[t] - baseline.next.logProbs[t];
    count++;
  }
  const before = predictionAt(baseline.next, token);
  const now = predictionAt(after.next, token);
  return {
    layer,
    token,
    slot,
    expertOut: ranked[slot],
    expertIn,
    gateOut: gate(ranked[slot]),
    gateIn: gate(expertIn),
    before,
    after: now,
    deltaLogProb: now.logProb - before.logProb,
    laterDelta: count ? later / count : NaN,
  };
}
