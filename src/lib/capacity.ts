/**
 * Capacity factor and token dropping, as Megatron-LM applies them
 * (`megatron/core/transformer/moe/moe_utils.py` @00611e6e, `get_capacity` and
 * `apply_router_token_dropping`): each expert takes at most
 * `ceil(T·k / E · CF)` of a batch's routing slots; the slots over it are
 * dropped (the token skips that expert; its other experts and the residual
 * carry it). Policy `probs` keeps each expert's highest-gate slots,
 * `position` its earliest tokens (upstream asks torch.topk for the first
 * ones among equal 0/1 entries, which it does not promise; the lab keeps the
 * earliest, the policy's stated intent). Dropless (MegaBlocks, OLMoE) is
 * CF = ∞.
 *
 * The balancing loss can count its `f` before or after the drop. Megatron-LM
 * #1513: the sequence-wise aux loss counted `f` after dropping, about 30 %
 * low at 80 experts, top-8, capacity 2. `lblBefore`/`lblAfter` show the gap.
 */
import { LabInputError } from "./types.js";

export type DropPolicy = "probs" | "position";

/** Slots an expert may take: `ceil(T·k / E · CF)` (Megatron-LM's get_capacity on T·k tokens). */
export function expertCapacity(tokens: number, topK: number, experts: number, capacityFactor: number): number {
  if (!(capacityFactor > 0)) throw new LabInputError(`the capacity factor must be a number > 0; got ${capacityFactor}`);
  if (capacityFactor === Infinity) return tokens;
  return Math.ceil(((tokens * topK) / experts) * capacityFactor);
}

export interface CapacityResult {
  readonly capacity: number;
  /** Per routing slot (token-major, T × k): 1 kept, 0 dropped. */
  readonly kept: Uint8Array;
  readonly loadBefore: Float64Array;
  readonly loadAfter: Float64Array;
  /** Dropped slots over all slots. */
  readonly droppedShare: number;
  /** Tokens that lost every one of their experts (they pass through the residual only). */
  readonly tokensFullyDropped: number;
}

/**
 * Applies an expert capacity to one batch's routes: `chosen[t·k + i]` the
 * i-th expert of token t, `gates[t·k + i]` its gate (the `probs` policy's ranking).
 */
export function applyCapacity(
  chosen: ArrayLike<number>,
  gates: ArrayLike<number>,
  experts: number,
  topK: number,
  capacityFactor: number,
  policy: DropPolicy,
): CapacityResult {
  if (policy !== "probs" && policy !== "position")
    throw new LabInputError(`unknown drop policy '${policy}'; known: probs, position`);
  const slots = chosen.length;
  const tokens = slots / topK;
  const capacity = expertCapacity(tokens, topK, experts, capacityFactor);
  const bySlot: number[][] = Array.from({ length: experts }, () => []);
  for (let s = 0; s < slots; s++) bySlot[chosen[s]].push(s);
  const kept = new Uint8Array(slots);
  const loadBefore = new Float64Array(experts);
  const loadAfter = new Float64Array(experts);
  for (let e = 0; e < experts; e++) {
    const list = bySlot[e];
    loadBefore[e] = list.length;
    // Slot order is token order: `position` keeps the first; `probs` the highest gates (ties: the earlier token).
    const ranked = policy === "position" ? list : [...list].sort((a, b) => gates[b] - gates[a] || a - b);
    for (let i = 0; i < Math.min(capacity, ranked.length); i++) kept[ranked[i]] = 1;
    loadAfter[e] = Math.min(capacity, list.length);
  }
  let dropped = 0;
  let fullyDropped = 0;
  for (let t = 0; t < tokens; t++) {
    let keptHere = 0;
    for (let i = 0; i < topK; i++) keptHere += kept[t * topK + i];
    dropped += topK - keptHere;
    if (keptHere === 0) fullyDropped++;
  }
  return { capacity, kept, loadBefore, loadAfter, droppedShare: dropped / slots, tokensFullyDropped: fullyDropped };
}

/**
 * One layer's Switch LBL `E Σ f P` with `f` from `load` (slots over T·k, the
 * slots that exist before the drop) and `P` the mean router probability.
 */
export function switchLblFromLoad(
  load: ArrayLike<number>,
  probSum: ArrayLike<number>,
  tokens: number,
  topK: number,
): number {
  const experts = load.length;
  let dot = 0;
  for (let e = 0; e < experts; e++) dot += (load[e] / (tokens * topK)) * (probSum[e] / tokens);
  return experts * dot;
}
