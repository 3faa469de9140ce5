/**
 * One layer of a batch routed by a convention, kept slot by slot: what the
 * production-routers page compares (presets against each other, the
 * dispatched route against the map an auxiliary loss counts, a capacity
 * applied to the route).
 */
import { ConventionRouter, type RoutingConvention } from "./conventions.js";
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
