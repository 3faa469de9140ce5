/**
 * Auxiliary-loss-free balancing (Wang et al. 2024; DeepSeek-V3): each expert
 * has a bias that is added to the routing scores only to choose the experts;
 * the gate weights stay the unbiased probabilities, and no gradient is
 * involved. After each batch the bias moves against the load error.
 */
import { routingCounter } from "./summary.js";
import { biasedTopKRow, softmaxRow, topKRow } from "./routing.js";
import type { RouterLogits } from "./types.js";
import { validateBatch } from "./validate.js";
import { maxVioOfLoad } from "./losses/max-vio.js";
import { normalGenerator } from "./random.js";

/** `sign`: `b ← b + u · sign(mean − c)`; `proportional`: `b ← b + u · (mean − c)`. */
export type BiasRule = "sign" | "proportional";

export interface BiasStep {
  /** Loads under the biased selection, `c[l][e]`, layers × experts. */
  readonly load: Float64Array;
  /** The biases after the update, layers × experts. */
  readonly bias: Float64Array;
  /** Chosen experts per token, layers × tokens × k, largest biased score first. */
  readonly chosen: Int32Array;
  /** Gate weights of the chosen experts: the unbiased `p`, not renormalised. */
  readonly gates: Float64Array;
}

/**
 * One step: select `top-k of p + b`, count the loads, update the bias.
 * `bias` holds one value per layer and expert (layers × experts) and is not modified.
 */
export function biasBalancingStep(
  logits: RouterLogits,
  topK: number,
  bias: Float64Array,
  rate: number,
  rule: BiasRule = "sign",
): BiasStep {
  const { layers, tokens, experts, data } = logits;
  validateBatch(logits, { topK, sequenceLengths: [tokens] });
  const load = new Float64Array(layers * experts);
  const chosen = new Int32Array(layers * tokens * topK);
  const gates = new Float64Array(layers * tokens * topK);
  const p = new Float64Array(experts);
  const scores = new Float64Array(experts);
  for (let l = 0; l < layers; l++) {
    for (let t = 0; t < tokens; t++) {
      const row = l * tokens + t;
      softmaxRow(data, row * experts, experts, p);
      biasedTopKRow(p, bias, l * experts, experts, topK, scores, chosen, row * topK);
      for (let i = 0; i < topK; i++) {
        const e = chosen[row * topK + i];
        gates[row * topK + i] = p[e];
        load[l * experts + e] += 1;
      }
    }
  }
  return { load, chosen, gates, bias: updateBias(bias, load, experts, tokens, topK, rate, rule) };
}

/**
 * The bias update alone, given one batch's loads (layers × experts, `experts`
 * per layer) over `tokens` tokens: experts below the mean load `T·k/E` gain
 * bias, those above lose it.
 */
export function updateBias(
  bias: Float64Array,
  load: Float64Array,
  experts: number,
  tokens: number,
  topK: number,
  rate: number,
  rule: BiasRule = "sign",
): Float64Array {
  const meanLoad = (tokens * topK) / experts;
  const next = new Float64Array(bias.length);
  for (let i = 0; i < bias.length; i++) {
    const error = meanLoad - load[i];
    next[i] = bias[i] + rate * (rule === "sign" ? Math.sign(error) : error);
  }
  return next;
}

export interface BiasSimulationOptions {
  experts: number;
  topK: number;
  /** Tokens per batch. */
  tokens: number;
  steps: number;
  /** Update rate u. */
  rate: number;
  rule?: BiasRule;
  /** Spread of the router's fixed preference between experts. */
  popularity?: number;
  seed?: number;
}

export interface BiasTrace {
  /** MaxVio of each batch under the biased selection. */
  maxVio: number[];
  /** MaxVio the same batches would have without any bias. */
  maxVioUnbiased: number[];
  /** Bias of each expert before each step: steps × experts. */
  bias: number[][];
}

/**
 * A stream of batches from a router with a fixed, skewed preference between
 * experts (what an aux-loss-free model's router looks like when the bias
 * alone must balance it), one bias update per batch.
 */
export function simulateBiasBalancing(options: BiasSimulationOptions): BiasTrace {
  const { experts, topK, tokens, steps, rate } = options;
  const normal = normalGenerator(options.seed ?? 1);
  const spread = options.popularity ?? 1;
  const preference = Float64Array.from({ length: experts }, () => spread * normal());
  // The stream is one long layer cut into batches of `tokens`: the replay
  // routes each batch with and without the bias in a single pass.
  const replay = new BiasReplayBuilder(
    { layers: 1, tokens: steps * tokens, experts },
    topK,
    rate,
    tokens,
    steps,
    options.rule ?? "sign",
  );
  const batch = new Float64Array(tokens * experts);
  for (let step = 0; step < steps; step++) {
    for (let i = 0; i < batch.length; i++) batch[i] = preference[i % experts] + normal();
    replay.addRows(batch, tokens);
  }
  const { maxVio, maxVioUnbiased, biasFirstLayer } = replay.replay;
  // biases before each step: zero, then the state after each earlier batch
  return {
    maxVio: maxVio[0],
    maxVioUnbiased: maxVioUnbiased[0],
    bias: [new Array<number>(experts).fill(0), ...biasFirstLayer.slice(0, -1)],
  };
}

/** What expert-bias balancing would have done on a file's logits, per layer. */
export interface BiasReplay {
  batchTokens: number;
  /** MaxVio of each batch under the biased selection: layers × batches. */
  maxVio: number[][];
  /** MaxVio of the same batches without a bias: layers × batches. */
  maxVioUnbiased: number[][];
  /** Bias of every expert after each batch, first layer only: batches × experts. */
  biasFirstLayer: number[][];
}

/**
 * Replays auxiliary-loss-free balancing over rows as they stream in (in the
 * flat layers × tokens order): each layer's tokens are cut into batches of
 * `batchTokens`, every batch is routed by `top-k of p + b`, and the bias is
 * updated after it (sign rule unless told otherwise). At most `maxBatches`
 * batches per layer.
 */
export class BiasReplayBuilder {
  private bias: Float64Array;
  private batchLoad: Float64Array;
  private plainLoad: Float64Array;
  private inBatch = 0;
  private rowsDone = 0;
  private readonly p: Float64Array;
  /** The biased choice being built, and its scores (sorted, ties by index). */
  private readonly chosen: Int32Array;
  private readonly held: Float64Array;
  private readonly plainChosen: Int32Array;
  /** 1 for the row's plain top-k, while the row is counted. */
  private readonly inPlain: Uint8Array;
  /** The experts by falling bias. */
  private readonly byBias: Int32Array;
  readonly replay: BiasReplay;

  constructor(
    private readonly shape: { layers: number; tokens: number; experts: number },
    private readonly topK: number,
    private readonly rate: number,
    batchTokens: number,
    private readonly maxBatches = 200,
    private readonly rule: BiasRule = "sign",
  ) {
    const E = shape.experts;
    this.bias = new Float64Array(E);
    this.batchLoad = new Float64Array(E);
    this.plainLoad = new Float64Array(E);
    this.p = new Float64Array(E);
    this.chosen = new Int32Array(topK);
    this.held = new Float64Array(topK);
    this.plainChosen = new Int32Array(topK);
    this.inPlain = new Uint8Array(E);
    this.byBias = Int32Array.from({ length: E }, (_, e) => e);
    this.replay = {
      batchTokens,
      maxVio: Array.from({ length: shape.layers }, () => []),
      maxVioUnbiased: Array.from({ length: shape.layers }, () => []),
      biasFirstLayer: [],
    };
  }

  /**
   * Routes `count` rows itself (its own softmax and plain top-k). When a
   * summary is built over the same rows, pass `onRow` to it instead: each
   * row is then routed once.
   */
  addRows(data: ArrayLike<number>, count: number): void {
    const { tokens, experts: E } = this.shape;
    const { topK, p } = this;
    for (let r = 0; r < count; r++, this.rowsDone++) {
      const layer = Math.floor(this.rowsDone / tokens);
      const token = this.rowsDone - layer * tokens;
      if (token === 0) this.startLayer();
      if (this.replay.maxVio[layer].length >= this.maxBatches) continue;
      softmaxRow(data, r * E, E, p);
      topKRow(p, E, topK, this.plainChosen);
      routingCounter.rows++;
      this.countRow(layer, token, p, 1, this.plainChosen);
    }
  }

  /**
   * A `RowListener` for `SummaryBuilder`: takes each row's probabilities
   * (`exps[e]·inv`) and plain top-k from the summary (built without a
   * selection bias: `chosen` must be the row's plain top-k), and adds only
   * the biased choice.
   */
  readonly onRow = (layer: number, token: number, exps: Float64Array, inv: number, plainChosen: Int32Array): void => {
    if (token === 0) this.startLayer();
    if (this.replay.maxVio[layer].length >= this.maxBatches) return;
    this.countRow(layer, token, exps, inv, plainChosen);
  };

  /**
   * Counts a row's plain choice and its choice by `p + b` (`p = exps·inv`):
   * the top-k of `p + b` that biasedTopKRow picks (ties to the lower index),
   * found without scoring every expert. The plain top-k are scored first;
   * every other expert has `p ≤ p_k`, the smallest of theirs, so its score
   * is at most `p_k + b_e`. Scanning the experts by falling bias, the scan
   * stops at the first whose bound cannot beat the k-th best score held:
   * no later one can. (The bound uses p_k with a 1e-12 relative margin: the
   * lab's fast exp is within 1e-13 of exp, so even a rounding that breaks
   * its monotonicity cannot let an expert past it.) The scan had cost 0.7×
   * the summary pass itself when it scored all E experts.
   */
  private countRow(layer: number, token: number, exps: Float64Array, inv: number, plainChosen: Int32Array): void {
    const { topK, chosen, held, inPlain, bias, byBias, plainLoad, batchLoad } = this;
    let pk = Infinity;
    for (let i = 0; i < topK; i++) {
      const c = plainChosen[i];
      plainLoad[c]++;
      inPlain[c] = 1;
      const p = exps[c] * inv;
      if (p < pk) pk = p;
      this.hold(i, p + bias[c], c);
    }
    const bound = pk * (1 + 1e-12);
    for (let j = 0; j < byBias.length; j++) {
      const e = byBias[j];
      const b = bias[e];
      if (bound + b < held[topK - 1]) break;
      if (inPlain[e]) continue;
      const z = exps[e] * inv + b;
      if (z > held[topK - 1] || (z === held[topK - 1] && e < chosen[topK - 1])) this.hold(topK - 1, z, e);
    }
    for (let i = 0; i < topK; i++) {
      batchLoad[chosen[i]]++;
      inPlain[plainChosen[i]] = 0;
    }
    if (++this.inBatch === this.replay.batchTokens || token === this.shape.tokens - 1) this.closeBatch(layer);
  }

  /**
   * Puts expert `e` with score `z` into the held list, which is sorted by
   * score, ties by expert index (biasedTopKRow's order), dropping whatever
   * stood at `slot` (the first free slot, or the last).
   */
  private hold(slot: number, z: number, e: number): void {
    const { held, chosen } = this;
    let i = slot;
    while (i > 0 && (z > held[i - 1] || (z === held[i - 1] && e < chosen[i - 1]))) {
      held[i] = held[i - 1];
      chosen[i] = chosen[i - 1];
      i--;
    }
    held[i] = z;
    chosen[i] = e;
  }

  /** The experts by falling bias (ties by index), after each change of the bias. */
  private sortByBias(): void {
    const { bias } = this;
    this.byBias.sort((a, b) => bias[b] - bias[a] || a - b);
  }

  private startLayer(): void {
    this.bias = new Float64Array(this.shape.experts);
    this.sortByBias();
    this.batchLoad.fill(0);
    this.plainLoad.fill(0);
    this.inBatch = 0;
  }

  private closeBatch(layer: number): void {
    const { experts } = this.shape;
    this.replay.maxVio[layer].push(maxVioOfLoad(this.batchLoad, this.inBatch, this.topK));
    this.replay.maxVioUnbiased[layer].push(maxVioOfLoad(this.plainLoad, this.inBatch, this.topK));
    this.bias = updateBias(this.bias, this.batchLoad, experts, this.inBatch, this.topK, this.rate, this.rule);
    this.sortByBias();
    if (layer === 0) this.replay.biasFirstLayer.push(Array.from(this.bias));
    this.batchLoad.fill(0);
    this.plainLoad.fill(0);
    this.inBatch = 0;
  }
}
