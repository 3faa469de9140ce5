/**
 * One layer of a batch routed by a convention, kept slot by slot: what the
 * production-routers page compares (presets against each other, the
 * dispatched route against the map an auxiliary loss counts, a capacity
 * applied to the route).
 */
import { ConventionRouter, olmoeConvention, type RoutingConvention } from "./conventions.js";
import type { LogitsBatch } from "./types.js";
import { topKRow } from "./routing.js";

export interface RoutedLayer {
  readonly tokens: number;
  readonly experts: number;
  readonly topK: number;
  /** Token t's experts at `[t·k, t·k + k)`, as dispatched (bias and groups included). */
  readonly chosen: Int32Array;
  /** Their gates, in the same order. */
  readonly gates: Float64Array;
  /**
   * The map Megatron-LM's aux loss counts (compute_routing_scores_for_aux_loss):
   * the plain top-k of the balance scores, no bias, no groups.
   */
  readonly auxChosen: Int32Array;
  /** Σ_t of the balance scores per expert (the LBL's T·P). */
  readonly balanceSum: Float64Array;
}

/** Routes rows `[0, tokens)` of `logits` (tokens × experts). */
export function routeLayer(
  logits: ArrayLike<number>,
  tokens: number,
  experts: number,
  convention: RoutingConvention,
  bias?: ArrayLike<number>,
): RoutedLayer {
  const k = convention.topK;
  const router = new ConventionRouter(convention, experts);
  const chosen = new Int32Array(tokens * k);
  const gates = new Float64Array(tokens * k);
  const auxChosen = new Int32Array(tokens * k);
  const balanceSum = new Float64Array(experts);
  for (let t = 0; t < tokens; t++) {
    router.route(logits, t * experts, bias);
    chosen.set(router.chosen, t * k);
    gates.set(router.gates, t * k);
    topKRow(router.balanceScores, experts, k, auxChosen, t * k);
    for (let e = 0; e < experts; e++) balanceSum[e] += router.balanceScores[e];
  }
  return { tokens, experts, topK: k, chosen, gates, auxChosen, balanceSum };
}

/** Slots per expert of a route (`chosen`, T·k). */
export function loadOf(chosen: ArrayLike<number>, experts: number): Float64Array {
  const load = new Float64Array(experts);
  for (let i = 0; i < chosen.length; i++) load[chosen[i]]++;
  return load;
}

/** The share of tokens whose set of k experts differs between two routes of the same tokens. */
export function differingTokens(a: ArrayLike<number>, b: ArrayLike<number>, topK: number): number {
  const tokens = a.length / topK;
  let differ = 0;
  for (let t = 0; t < tokens; t++) {
    const left = Array.from({ length: topK }, (_, i) => a[t * topK + i]).sort((x, y) => x - y);
    const right = Array.from({ length: topK }, (_, i) => b[t * topK + i]).sort((x, y) => x - y);
    if (left.some((e, i) => e !== right[i])) differ++;
  }
  return differ / tokens;
}

/** Every layer's route of a span of a batch's tokens: what the token → expert flow figure draws. */
export interface TokenRoutes {
  readonly layers: number;
  readonly experts: number;
  readonly topK: number;
  /** Tokens in the span. */
  readonly tokens: number;
  /** `chosen[(l·tokens + t)·k + i]`: token t's i-th expert in layer l, best first (the batch's bias in the choice). */
  readonly chosen: Int32Array;
  /** The gates of those experts (OLMoE's: the unbiased softmax probability). */
  readonly gates: Float64Array;
}

/** Routes tokens `[first, first + count)` of a batch in every layer, as OLMoE-mini dispatched them. */
export function tokenRoutes(batch: LogitsBatch, first: number, count: number): TokenRoutes {
  const { logits, topK, selectionBias } = batch;
  const { layers, tokens, experts, data } = logits;
  const n = Math.max(0, Math.min(count, tokens - first));
  const router = new ConventionRouter({ ...olmoeConvention(topK) }, experts);
  const chosen = new Int32Array(layers * n * topK);
  const gates = new Float64Array(layers * n * topK);
  for (let l = 0; l < layers; l++)
    for (let t = 0; t < n; t++) {
      router.route(data, (l * tokens + first + t) * experts, selectionBias, l * experts);
      chosen.set(router.chosen, (l * n + t) * topK);
      gates.set(router.gates, (l * n + t) * topK);
    }
  return { layers, experts, topK, tokens: n, chosen, gates };
}
