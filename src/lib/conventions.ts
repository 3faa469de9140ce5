/**
 * Routers as production models run them. The lab's default router is
 * OLMoE's (softmax over all experts, top-k, gates as they are); the models
 * people train today differ in four places, all in one `RoutingConvention`:
 *
 * - the score function: softmax, sigmoid (DeepSeek-V3, Kimi-K2) or
 *   sqrt(softplus) (DeepSeek-V4; Megatron-LM's `sqrtsoftplus`);
 * - softmax before or after the top-k (Megatron-LM's `moe_router_pre_softmax`):
 *   OLMoE and Qwen3 take the top-k of the softmax, Mixtral-style and gpt-oss
 *   routers take the top-k of the logits and a softmax over the chosen ones;
 * - group-limited routing: experts in groups, the best groups kept, then the
 *   top-k inside them, with a group score that differs between codebases;
 * - the gates: renormalised over the chosen experts or not, times a scaling
 *   factor; an expert bias (loss-free balancing) enters the choice only.
 *
 * Sources, read at these commits (the lab re-implements; it copies no code):
 * - Megatron-LM `megatron/core/transformer/moe/moe_utils.py` @00611e6e:
 *   `topk_routing_with_score_function` (softmax: top-k of the logits, then a
 *   softmax over them, unless pre_softmax; sigmoid/sqrtsoftplus: the bias
 *   added for the choice only, gates = unbiased scores / their sum when k > 1,
 *   then × scaling factor), `group_limited_topk` (a group's score = the sum of
 *   its top-(k / groups kept) scores, of the biased scores when there is a
 *   bias), `compute_routing_scores_for_aux_loss` (the aux loss's own map:
 *   softmax, or the per-token normalised sigmoid/sqrtsoftplus, plain top-k,
 *   no bias, no groups).
 * - DeepSeek-V3 `inference/model.py` `Gate.forward` @1ea5a1a7: sigmoid
 *   scores, bias added for the choice, a group's score = its largest score
 *   without a bias and the sum of its top-2 biased scores with one, 4 of 8
 *   groups kept, the rest masked to −∞, top-8, gates = unbiased sigmoid
 *   renormalised × route_scale 2.5.
 */
import { topKRow } from "./routing.js";
import { LabInputError } from "./types.js";

export type ScoreFunction = "softmax" | "sigmoid" | "sqrtsoftplus";

/**
 * How a group of experts is scored before the best groups are kept:
 * `max` its largest score; `top2-sum` the sum of its two largest;
 * `deepseek-v3` max without a bias and top-2 sum with one (DeepSeek-V3's code);
 * `megatron` the sum of its top-(k / kept groups) scores (Megatron-LM).
 */
export type GroupRule = "max" | "top2-sum" | "deepseek-v3" | "megatron";

export interface ExpertGroups {
  /** Groups the experts are split into (consecutive, equal sizes). */
  readonly count: number;
  /** Groups kept per token. */
  readonly keep: number;
  readonly rule: GroupRule;
}

export interface RoutingConvention {
  readonly score: ScoreFunction;
  readonly topK: number;
  /**
   * Softmax only: true takes the top-k of the softmax over all experts
   * (OLMoE, Qwen3; Megatron's `--moe-router-pre-softmax`), false the top-k of
   * the logits and a softmax over the chosen ones (Megatron's default, gpt-oss).
   * The choice is the same without groups or a bias; the gates differ unless
   * `normalizeGates` is set.
   */
  readonly preSoftmax: boolean;
  /** Gates divided by their sum over the chosen experts (Mixtral, Qwen3's norm_topk_prob, sigmoid routers). */
  readonly normalizeGates: boolean;
  /** Multiplies the gates (DeepSeek-V3's route_scale 2.5; Megatron's moe_router_topk_scaling_factor). */
  readonly scalingFactor: number;
  readonly groups?: ExpertGroups;
}

/** The lab's own router, OLMoE's: softmax, top-k of the probabilities, gates as they are. */
export function olmoeConvention(topK: number): RoutingConvention {
  return { score: "softmax", topK, preSoftmax: true, normalizeGates: false, scalingFactor: 1 };
}

/** Checks a convention against the number of experts; one sentence per problem. */
export function validateConvention(c: RoutingConvention, experts: number): void {
  if (!Number.isInteger(c.topK) || c.topK < 1 || c.topK > experts) {
    throw new LabInputError(`top_k must be an integer between 1 and the number of experts (${experts}); got ${c.topK}`);
  }
  if (!(Number.isFinite(c.scalingFactor) && c.scalingFactor > 0)) {
    throw new LabInputError(`the scaling factor must be a finite number > 0; got ${c.scalingFactor}`);
  }
  if (!c.groups) return;
  const { count, keep } = c.groups;
  if (!Number.isInteger(count) || count < 1)
    throw new LabInputError(`the number of groups must be a positive integer; got ${count}`);
  if (experts % count !== 0) {
    throw new LabInputError(
      `${count} groups do not divide ${experts} experts: groups must hold equal numbers of experts`,
    );
  }
  if (!Number.isInteger(keep) || keep < 1 || keep > count) {
    throw new LabInputError(
      `the groups kept per token must be an integer between 1 and the ${count} groups; got ${keep}`,
    );
  }
  const reachable = keep * (experts / count);
  if (c.topK > reachable) {
    throw new LabInputError(
      `top-${c.topK} cannot be chosen from ${keep} kept group${keep === 1 ? "" : "s"} of ${experts / count} experts (${reachable} reachable)`,
    );
  }
  if (c.groups.rule === "megatron" && c.topK % keep !== 0) {
    throw new LabInputError(
      `Megatron-LM's group rule sums each group's top-(k / groups kept) scores: k = ${c.topK} is not a multiple of ${keep} kept groups`,
    );
  }
}

/** Checks an expert bias (layers × experts, selection only). */
export function validateBias(bias: ArrayLike<number>, layers: number, experts: number): void {
  if (bias.length !== layers * experts && bias.length !== experts) {
    throw new LabInputError(
      `the expert bias has ${bias.length} values; expected ${experts} (one per expert) or ${layers * experts} (layers × experts)`,
    );
  }
  for (let i = 0; i < bias.length; i++) {
    if (!Number.isFinite(bias[i])) {
      throw new LabInputError(
        `the expert bias is not finite at ${bias.length === experts ? "" : `layer ${Math.floor(i / experts)}, `}expert ${i % experts}: ${bias[i]}`,
      );
    }
  }
}

/**
 * A warning, not an error: sigmoid or sqrt(softplus) scores asked of rows
 * that already sum to 1 (the file most likely holds softmax probabilities,
 * not router logits). Checks up to `maxRows` rows; null when fine.
 */
export function probabilitiesWarning(
  data: ArrayLike<number>,
  experts: number,
  score: ScoreFunction,
  maxRows = 256,
): string | null {
  if (score === "softmax") return null;
  const rows = Math.min(maxRows, Math.floor(data.length / experts));
  if (rows === 0) return null;
  for (let r = 0; r < rows; r++) {
    let sum = 0;
    for (let e = 0; e < experts; e++) {
      const v = data[r * experts + e];
      if (v < 0 || v > 1) return null;
      sum += v;
    }
    if (Math.abs(sum - 1) > 1e-3) return null;
  }
  return `every row checked sums to 1: these look like probabilities, not router logits, and ${score} of a probability is not the router's score`;
}

/** Per-row scratch space and results, reused from row to row. */
export class ConventionRouter {
  /** The score function's value per expert (softmax p, sigmoid s, or sqrt(softplus)). */
  readonly scores: Float64Array;
  /**
   * What an auxiliary loss balances, per expert: the softmax, or the scores
   * normalised to sum to 1 per token (Megatron's aux scores; DeepSeek-V3's
   * sequence-wise loss).
   */
  readonly balanceScores: Float64Array;
  /** The chosen experts, best first (by the selection score). */
  readonly chosen: Int32Array;
  /** The gates of the chosen experts, in the order of `chosen`. */
  readonly gates: Float64Array;
  private readonly selection: Float64Array;
  private readonly groupScores: Float64Array;
  private readonly keptGroups: Int32Array;
  private readonly scratch: Int32Array;
  /** One group's selection scores, and which groups are kept: reused row to row (no allocation per token). */
  private readonly inGroup: Float64Array;
  private readonly keptMask: Uint8Array;

  constructor(
    readonly convention: RoutingConvention,
    readonly experts: number,
  ) {
    validateConvention(convention, experts);
    this.scores = new Float64Array(experts);
    this.balanceScores = new Float64Array(experts);
    this.selection = new Float64Array(experts);
    this.chosen = new Int32Array(convention.topK);
    this.gates = new Float64Array(convention.topK);
    const groups = convention.groups?.count ?? 1;
    this.groupScores = new Float64Array(groups);
    this.keptGroups = new Int32Array(convention.groups?.keep ?? 1);
    this.scratch = new Int32Array(Math.max(2, convention.topK, experts));
    this.inGroup = new Float64Array(experts / groups);
    this.keptMask = new Uint8Array(groups);
  }

  /**
   * Routes one row: `logits[offset .. offset + E)`, with `bias[biasOffset ..]`
   * added to the selection scores only (absent: no bias). Returns the row's
   * logsumexp (the z-loss's quantity, whatever the score function).
   */
  route(logits: ArrayLike<number>, offset: number, bias?: ArrayLike<number>, biasOffset = 0): number {
    const { convention: c, experts: E, scores, balanceScores, selection } = this;
    let max = -Infinity;
    for (let e = 0; e < E; e++) if (logits[offset + e] > max) max = logits[offset + e];
    // One exp per logit: exp(x − max) serves the logsumexp and, scaled, the softmax.
    let sum = 0;
    for (let e = 0; e < E; e++) sum += scores[e] = Math.exp(logits[offset + e] - max);
    const lse = max + Math.log(sum);

    if (c.score === "softmax") {
      const inv = 1 / sum;
      for (let e = 0; e < E; e++) scores[e] *= inv;
      balanceScores.set(scores);
      // Top-k of the logits and of the softmax are the same choice; the group
      // scores are not (a sum of logits against a sum of probabilities).
      for (let e = 0; e < E; e++)
        selection[e] = (c.preSoftmax ? scores[e] : logits[offset + e]) + (bias ? bias[biasOffset + e] : 0);
    } else {
      let total = 0;
      for (let e = 0; e < E; e++) {
        const x = logits[offset + e];
        // sigmoid, and sqrt(softplus) with softplus(x) = max(x, 0) + log1p(exp(−|x|)): no overflow, no underflow to 0
        const s =
          c.score === "sigmoid"
            ? x >= 0
              ? 1 / (1 + Math.exp(-x))
              : Math.exp(x) / (1 + Math.exp(x))
            : Math.sqrt(Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x))));
        scores[e] = s;
        total += s;
      }
      for (let e = 0; e < E; e++) balanceScores[e] = scores[e] / (total + 1e-20);
      for (let e = 0; e < E; e++) selection[e] = scores[e] + (bias ? bias[biasOffset + e] : 0);
    }

    if (c.groups && c.groups.count > 1) this.maskGroups(bias !== undefined);
    topKRow(selection, E, c.topK, this.chosen);

    let gateSum = 0;
    for (let i = 0; i < c.topK; i++) {
      this.gates[i] = scores[this.chosen[i]];
      gateSum += this.gates[i];
    }
    // Megatron's softmax after top-k is a softmax over the chosen logits: the
    // chosen probabilities renormalised, the same as normalizeGates.
    const normalize = c.normalizeGates || (c.score === "softmax" && !c.preSoftmax);
    for (let i = 0; i < c.topK; i++)
      this.gates[i] =
        (normalize ? this.gates[i] / (gateSum + (c.score === "softmax" ? 0 : 1e-20)) : this.gates[i]) * c.scalingFactor;
    return lse;
  }

  /** Sets the selection score of every expert outside the kept groups to −∞. */
  private maskGroups(hasBias: boolean): void {
    const { convention: c, experts: E, selection, groupScores, keptGroups, scratch } = this;
    const { count, keep, rule } = c.groups!;
    const size = E / count;
    const resolved = rule === "deepseek-v3" ? (hasBias ? "top2-sum" : "max") : rule;
    const take = resolved === "max" ? 1 : resolved === "top2-sum" ? Math.min(2, size) : c.topK / keep;
    const { inGroup, keptMask } = this;
    for (let g = 0; g < count; g++) {
      for (let j = 0; j < size; j++) inGroup[j] = selection[g * size + j];
      topKRow(inGroup, size, take, scratch);
      let score = 0;
      for (let i = 0; i < take; i++) score += inGroup[scratch[i]];
      groupScores[g] = score;
    }
    topKRow(groupScores, count, keep, keptGroups);
    keptMask.fill(0);
    for (let i = 0; i < keep; i++) keptMask[keptGroups[i]] = 1;
    for (let g = 0; g < count; g++)
      if (!keptMask[g]) for (let j = 0; j < size; j++) selection[g * size + j] = -Infinity;
  }
}
