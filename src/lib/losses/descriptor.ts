/**
 * One loss variant, defined once. The output record (`lossRecord`), the
 * gradients (`lossGradient`), the CSV export and the pages' loss tables are
 * all built from a list of these, the way Observable Plot builds every mark
 * on one base class: adding a variant is one file in `variants/` plus one
 * line in `registry.ts` (see docs/adding-a-loss.md).
 *
 * A descriptor reduces the routing summary (`summary.ts`): it never sees the
 * logits, so it is cheap and a slider that changes the micro-batch size
 * re-runs only the reductions.
 */
import type { SequenceGroup } from "../batching.js";
import type { RoutingSummary } from "../summary.js";

/** What a reduction may depend on besides the summary. */
export interface LossContext {
  /** Sequences per micro-batch (the last micro-batch may be shorter). */
  readonly microBatchSequences: number;
}

/** What a table note may mention. */
export interface NoteContext {
  readonly topK: number;
  readonly experts: number;
  readonly tokens: number;
  /** Sequences per micro-batch, and what a sequence is called here ("window", "sequence"). */
  readonly microBatch: number;
  readonly unit: string;
}

/**
 * `scale · Σ_{t ∈ group} Σ_e weights[e] · p[t][e]` in one layer: the form
 * every differentiable balancing loss takes once its counts (which come from
 * an arg-top-k and carry no gradient) are frozen into the weights.
 */
export interface ScoreBlock {
  readonly layer: number;
  readonly group: SequenceGroup;
  readonly weights: ArrayLike<number>;
  readonly scale: number;
}

/** How a descriptor's gradient with respect to the router logits is built. */
export type GradientRule =
  /** A sum of score blocks (every LBL, CV² of the importance). */
  | { readonly kind: "weighted-scores"; blocks(summary: RoutingSummary, context: LossContext): Iterable<ScoreBlock> }
  /** `scale · Σ_l Σ_t lse[l][t]²` (every z-loss): needs no summary. */
  | {
      readonly kind: "squared-lse";
      scale(shape: { readonly layers: number; readonly tokens: number; readonly topK: number }): number;
    };

export interface LossDescriptor<Family extends string = string, Variant extends string = string> {
  /** The record's first key: `lbl`, `z_loss`, `cv2`, `max_vio`. */
  readonly family: Family;
  /** The record's second key: `switch`, `micro_batch`, … */
  readonly variant: Variant;
  /** The formula, as TeX, for pages. */
  readonly formula: string;
  /** What the number is measured in. */
  readonly units: string;
  /** The value at perfect balance for top-k = `topK`; null where it depends on the logits (z-loss). */
  balance(topK: number): number | null;
  /** One line for the loss tables: which system computes it, how it reads. */
  note(context: NoteContext): string;
  /** The value of the output record: unweighted (before α or β), averaged over layers. */
  value(summary: RoutingSummary, context: LossContext): number;
  /** Absent: not differentiable (counts only), never used as a training term. */
  readonly gradient?: GradientRule;
}

/** `family.variant`, the name the CLI, the CSV and the tables use. */
export type NameOf<D> = D extends LossDescriptor<infer F, infer V> ? `${F}.${V}` : never;

export function lossName<D extends LossDescriptor>(descriptor: D): NameOf<D> {
  return `${descriptor.family}.${descriptor.variant}` as NameOf<D>;
}

/**
 * Keeps the literal family and variant, and whether there is a gradient, in
 * the type, so the record's type and the differentiable names follow the registry.
 */
export function defineLoss<const D extends LossDescriptor>(descriptor: D): D {
  return descriptor;
}
