/**
 * Phase one of every loss: a single pass over the logits that computes each
 * token's softmax, top-k and logsumexp, and keeps only what the losses need,
 * summed per layer and per sequence. Every loss variant (any granularity, any
 * micro-batch size, any coefficient) is then a cheap reduction of this
 * summary, of size layers × sequences × experts: a slider never re-runs the
 * softmax.
 */
import {
  LARGEST_LOGIT,
  checkedBatch,
  firstInvalidLogit,
  invalidLogitMessage,
  logitPosition,
  validateBatch,
  valueScanCounter,
} from "./validate.js";
import { expNonPositive } from "./fast-exp.js";
import { LabInputError, type LogitsBatch, type RouterLogits } from "./types.js";
import type { SequenceGroup } from "./batching.js";
import { ConventionRouter, type RoutingConvention } from "./conventions.js";

export interface RoutingSummary {
  readonly layers: number;
  readonly experts: number;
  readonly topK: number;
  readonly tokens: number;
  readonly sequenceLengths: readonly number[];
  /** `Σ_{t∈s} p[l][t][e]`: layers × sequences × experts, float64. */
  readonly probSum: Float64Array;
  /** `#{t∈s : e ∈ S[l][t]}`: layers × sequences × experts, routing slots. */
  readonly load: Float64Array;
  /** `Σ_{t∈s} lse[l][t]²`: layers × sequences. */
  readonly logSumExpSquareSum: Float64Array;
  /** Largest logit seen, for the z-loss page's overflow warning. */
  readonly maxLogit: number;
}

/** The summary of a batch that carries its own layout, top-k and bias; a batch `checkedBatch` passed is not checked again. */
export function summarizeBatch(batch: LogitsBatch, options: Pick<SummaryOptions, "onRow"> = {}): RoutingSummary {
  const { logits, topK, sequenceLengths } = checkedBatch(batch);
  const builder = new SummaryBuilder(logits, topK, sequenceLengths, {
    ...options,
    ...(batch.selectionBias ? { selectionBias: batch.selectionBias } : {}),
  });
  builder.addRows(logits.data, 0, logits.layers * logits.tokens);
  return builder.finish();
}

/**
 * Receives every row as the summary routes it, so that a second consumer (the
 * expert-bias replay of the your-logits page) needs no softmax or top-k of
 * its own: `exps[e]·inv` is the row's probability, `chosen` its top-k as the
 * summary chose it. The arrays are reused for the next row.
 */
export type RowListener = (
  layer: number,
  token: number,
  exps: Float64Array,
  inv: number,
  chosen: Int32Array,
  /** The chosen experts' gates, when a convention routed the row; absent: `exps[e]·inv` of the chosen. */
  gates?: Float64Array,
) => void;

/** One listener that calls each given one in turn (undefined when none is given). */
export function combineListeners(...listeners: (RowListener | undefined)[]): RowListener | undefined {
  const present = listeners.filter((l): l is RowListener => l !== undefined);
  if (present.length <= 1) return present[0];
  return (layer, token, exps, inv, chosen, gates) => {
    for (const listener of present) listener(layer, token, exps, inv, chosen, gates);
  };
}

/** Rows routed (softmax and top-k) by every summary builder: a test checks each row is routed once. */
export const routingCounter = { rows: 0 };

export interface SummaryOptions {
  /** Called with every row after it is routed (see RowListener). */
  readonly onRow?: RowListener;
  /**
   * Auxiliary-loss-free routing's expert bias, layers × experts: added to the
   * softmax only to choose the top-k (the load), never to the probabilities
   * or gates. Omitted: plain top-k.
   */
  readonly selectionBias?: ArrayLike<number>;
  /**
   * A production router's convention (conventions.ts): sigmoid or
   * sqrt(softplus) scores, groups, the bias in selection. The load is then
   * the route that convention dispatches, and the probability sums are the
   * scores an auxiliary loss balances (the softmax, or the per-token
   * normalised scores). Omitted: the lab's softmax router (the fast path).
   */
  readonly convention?: RoutingConvention;
  /**
   * Only these layers' rows (a shard): the builder starts at the first row of
   * layer `first` and finishes after the last row of layer `end − 1`. The other
   * layers' sums stay zero, so `mergeShards` adds shards without rounding.
   * Omitted: every layer.
   */
  readonly layers?: LayerRange;
}

/** Layers `first` … `end − 1`. */
export interface LayerRange {
  readonly first: number;
  readonly end: number;
}

/**
 * Cuts `layers` into at most `count` contiguous ranges of nearly equal size
 * (fewer when there are fewer layers): one per worker.
 */
export function layerShards(layers: number, count: number): LayerRange[] {
  const n = Math.max(1, Math.min(count, layers));
  return Array.from({ length: n }, (_, i) => ({
    first: Math.floor((i * layers) / n),
    end: Math.floor(((i + 1) * layers) / n),
  }));
}

/**
 * The summary of a whole batch from summaries of disjoint layer shards (each
 * built with `SummaryOptions.layers`). A shard's sums are zero outside its
 * layers, and x + 0 is x exactly, so the merged summary equals, bit for bit,
 * the one a single builder computes over every row.
 */
export function mergeShards(shards: readonly RoutingSummary[]): RoutingSummary {
  if (shards.length === 0) throw new Error("no shard to merge");
  const [first] = shards;
  const probSum = new Float64Array(first.probSum.length);
  const load = new Float64Array(first.load.length);
  const logSumExpSquareSum = new Float64Array(first.logSumExpSquareSum.length);
  let maxLogit = -Infinity;
  for (const shard of shards) {
    const { layers, experts, topK, tokens } = shard;
    if (layers !== first.layers || experts !== first.experts || topK !== first.topK || tokens !== first.tokens)
      throw new Error("the shards are of different batches");
    for (let i = 0; i < probSum.length; i++) probSum[i] += shard.probSum[i];
    for (let i = 0; i < load.length; i++) load[i] += shard.load[i];
    for (let i = 0; i < logSumExpSquareSum.length; i++) logSumExpSquareSum[i] += shard.logSumExpSquareSum[i];
    if (shard.maxLogit > maxLogit) maxLogit = shard.maxLogit;
  }
  return { ...first, sequenceLengths: [...first.sequenceLengths], probSum, load, logSumExpSquareSum, maxLogit };
}

/** Computes the summary; the layout defaults to one sequence holding every token. */
export function summarize(
  logits: RouterLogits,
  topK: number,
  sequenceLengths: readonly number[] = [logits.tokens],
  options: SummaryOptions = {},
): RoutingSummary {
  if (options.convention) validateBatch(logits, { topK, sequenceLengths });
  else {
    // The softmax fast path checks every value as it reads the row (addRows):
    // one read of the batch instead of two.
    validateBatch(logits, { topK, sequenceLengths }, { skipValues: true });
    const { layers, tokens, experts, data } = logits;
    if (data.length !== layers * tokens * experts)
      throw new LabInputError(
        `router logits hold ${data.length} values, but the shape ${layers} × ${tokens} × ${experts} needs ${layers * tokens * experts}`,
      );
    valueScanCounter.scans++;
  }
  const builder = new SummaryBuilder(logits, topK, sequenceLengths, options);
  builder.addRows(logits.data, 0, logits.layers * logits.tokens);
  return builder.finish();
}

/**
 * Builds a summary from rows (one token of one layer each, in the flat
 * layers × tokens order) that arrive in chunks, so that a file of any size
 * can be summarised while it streams in, without ever being held whole.
 * `summarize` is this with one chunk.
 */
/**
 * The summary keeps E probability sums and E loads per (layer, sequence): its
 * memory grows with the number of sequences, not with the file's size, so it
 * is bounded on its own (a valid file of one-token sequences would otherwise
 * need many times its size).
 */
export const MAX_SUMMARY_BYTES = 2 ** 30;

/** Bytes a summary of `sequences` sequences holds: two float64 sums per (layer, sequence, expert), one per (layer, sequence), a sequence index per token. */
export function summaryBytes(shape: { layers: number; tokens: number; experts: number }, sequences: number): number {
  return (2 * shape.layers * sequences * shape.experts + shape.layers * sequences) * 8 + shape.tokens * 4;
}

export class SummaryBuilder {
  private readonly probSum: Float64Array;
  private readonly load: Float64Array;
  private readonly logSumExpSquareSum: Float64Array;
  private readonly exps: Float64Array;
  private readonly chosen: Int32Array;
  private readonly sequenceOf: Int32Array; // token → sequence
  private readonly selectionBias: Float64Array | null;
  private readonly scores: Float64Array;
  /** The row being summarised, copied out of the caller's array. */
  private readonly row: Float64Array;
  private readonly onRow: RowListener | undefined;
  private readonly router: ConventionRouter | null;
  private maxLogit = -Infinity;
  /** Rows added so far, counted from the batch's first row (a shard starts at its first layer's). */
  private rowsDone: number;
  /** The row after the last one this builder takes. */
  private readonly endRow: number;

  constructor(
    private readonly shape: { layers: number; tokens: number; experts: number },
    private readonly topK: number,
    private readonly sequenceLengths: readonly number[],
    options: SummaryOptions = {},
  ) {
    const bias = options.selectionBias;
    if (bias !== undefined) {
      if (bias.length !== shape.layers * shape.experts)
        throw new LabInputError(
          `the selection bias has ${bias.length} values; layers × experts is ${shape.layers * shape.experts}`,
        );
      for (let i = 0; i < bias.length; i++)
        if (!Number.isFinite(bias[i]))
          throw new LabInputError(
            `the selection bias is not finite at layer ${Math.floor(i / shape.experts)}, expert ${i % shape.experts}: ${bias[i]}`,
          );
    }
    this.selectionBias = bias === undefined ? null : Float64Array.from(bias);
    this.onRow = options.onRow;
    if (options.convention && options.convention.topK !== topK) {
      throw new LabInputError(`the routing convention chooses top-${options.convention.topK}, the batch top-${topK}`);
    }
    this.router = options.convention ? new ConventionRouter(options.convention, shape.experts) : null;
    const range = options.layers ?? { first: 0, end: shape.layers };
    if (!(
      Number.isInteger(range.first) &&
      Number.isInteger(range.end) &&
      0 <= range.first &&
      range.first < range.end &&
      range.end <= shape.layers
    ))
      throw new LabInputError(
        `layers ${range.first} … ${range.end - 1} are not a range of the batch's ${shape.layers} layers`,
      );
    this.rowsDone = range.first * shape.tokens;
    this.endRow = range.end * shape.tokens;
    this.scores = new Float64Array(shape.experts);
    this.row = new Float64Array(shape.experts);
    const sequences = sequenceLengths.length;
    const needed = summaryBytes(shape, sequences);
    if (needed > MAX_SUMMARY_BYTES) {
      throw new LabInputError(
        `${sequences.toLocaleString("en")} sequences × ${shape.layers} layers × ${shape.experts} experts need ${(needed / 2 ** 30).toFixed(1)} GiB of per-sequence sums, over the ${MAX_SUMMARY_BYTES / 2 ** 30} GiB this lab allows itself; give fewer, longer sequences (sequence_lengths) — the per-sequence and micro-batch losses need one set of sums per sequence`,
      );
    }
    this.probSum = new Float64Array(shape.layers * sequences * shape.experts);
    this.load = new Float64Array(shape.layers * sequences * shape.experts);
    this.logSumExpSquareSum = new Float64Array(shape.layers * sequences);
    this.exps = new Float64Array(shape.experts);
    this.chosen = new Int32Array(topK);
    this.sequenceOf = new Int32Array(shape.tokens);
    let t = 0;
    sequenceLengths.forEach((length, s) => this.sequenceOf.fill(s, t, (t += length)));
  }

  get rows(): number {
    return this.rowsDone;
  }

  /** Adds `count` rows read from `data[offset·E …]`; they must be the next rows in order. */
  addRows(data: ArrayLike<number>, offsetRows: number, count: number): void {
    if (this.rowsDone + count > this.endRow)
      throw new Error(`${count} more rows would pass this summary's last row (${this.endRow - 1})`);
    if (this.router) return this.addRowsByConvention(this.router, data, offsetRows, count);
    const { tokens, experts } = this.shape;
    const { topK, exps, chosen, probSum, load, logSumExpSquareSum, sequenceOf } = this;
    const sequences = this.sequenceLengths.length;
    let maxLogit = this.maxLogit;
    const biased = this.selectionBias !== null;
    const x = this.row;
    for (let r = 0; r < count; r++) {
      const row = (offsetRows + r) * experts;
      const globalRow = this.rowsDone + r;
      const layer = Math.floor(globalRow / tokens);
      const sequence = sequenceOf[globalRow - layer * tokens];
      const base = (layer * sequences + sequence) * experts;
      // One read of the row: copied into a Float64Array (every later pass then
      // reads one monomorphic array, whatever `data` is), its values checked
      // (the value check used to be a pass of its own over the whole batch)
      // and its max found. (Finding the top-k in this loop too was slower:
      // the branchy insertion stops the copy from running as a tight loop.)
      let max = -Infinity;
      let valid = true;
      for (let e = 0; e < experts; e++) {
        const v = data[row + e];
        // NaN fails both comparisons, hence the negation
        if (!(v >= -LARGEST_LOGIT && v <= LARGEST_LOGIT)) valid = false;
        x[e] = v;
        if (v > max) max = v;
      }
      if (!valid) this.rejectRow(data, row, globalRow);
      let sum = 0;
      for (let e = 0; e < experts; e++) {
        const z = expNonPositive(x[e] - max);
        exps[e] = z;
        sum += z;
      }
      const inv = 1 / sum;
      for (let e = 0; e < experts; e++) probSum[base + e] += exps[e] * inv;
      // Top-k on the logits themselves (the same order as p, and no rounding
      // in between: float64 logits 1e-10 apart keep their order, as in the
      // framework that produced them; ties still fall to the lower index),
      // or on p + bias when a selection bias is given; inlined because this
      // is the hot loop. `floor` is the k-th best score so far (−∞ until k
      // are held), so most experts cost one comparison.
      let scores: Float64Array = x;
      if (biased) {
        const bias = this.selectionBias!;
        const biasRow = layer * experts;
        scores = this.scores;
        for (let e = 0; e < experts; e++) scores[e] = exps[e] * inv + bias[biasRow + e];
      }
      let filled = 0;
      let floor = -Infinity;
      for (let e = 0; e < experts; e++) {
        const z = scores[e];
        if (!(z > floor) && filled === topK) continue;
        let i = filled < topK ? filled++ : topK - 1;
        while (i > 0 && z > scores[chosen[i - 1]]) {
          chosen[i] = chosen[i - 1];
          i--;
        }
        chosen[i] = e;
        if (filled === topK) floor = scores[chosen[topK - 1]];
      }
      for (let i = 0; i < topK; i++) load[base + chosen[i]] += 1;
      if (this.onRow) this.onRow(layer, globalRow - layer * tokens, exps, inv, chosen);
      const lse = max + Math.log(sum); // sum ≥ 1: the max term is exp(0)
      logSumExpSquareSum[layer * sequences + sequence] += lse * lse;
      if (max > maxLogit) maxLogit = max;
    }
    this.maxLogit = maxLogit;
    this.rowsDone += count;
    routingCounter.rows += count;
  }

  /** Throws the sentence that names the row's first bad logit (a LabInputError, as validateBatch's). */
  private rejectRow(data: ArrayLike<number>, row: number, globalRow: number): never {
    const { experts } = this.shape;
    const bad = firstInvalidLogit(Array.from({ length: experts }, (_, e) => data[row + e]));
    throw new LabInputError(
      `router logit at ${logitPosition(this.shape, globalRow * experts + bad)} is ${invalidLogitMessage(data[row + bad])}`,
    );
  }

  /** The same accounting for a convention's router: one row at a time through ConventionRouter. */
  private addRowsByConvention(
    router: ConventionRouter,
    data: ArrayLike<number>,
    offsetRows: number,
    count: number,
  ): void {
    const { tokens, experts } = this.shape;
    const { probSum, load, logSumExpSquareSum, sequenceOf, selectionBias } = this;
    const sequences = this.sequenceLengths.length;
    const { balanceScores, chosen } = router;
    for (let r = 0; r < count; r++) {
      const row = (offsetRows + r) * experts;
      const globalRow = this.rowsDone + r;
      const layer = Math.floor(globalRow / tokens);
      const sequence = sequenceOf[globalRow - layer * tokens];
      const base = (layer * sequences + sequence) * experts;
      const lse = router.route(data, row, selectionBias ?? undefined, layer * experts);
      for (let e = 0; e < experts; e++) {
        probSum[base + e] += balanceScores[e];
        if (data[row + e] > this.maxLogit) this.maxLogit = data[row + e];
      }
      for (let i = 0; i < chosen.length; i++) load[base + chosen[i]] += 1;
      if (this.onRow) this.onRow(layer, globalRow - layer * tokens, balanceScores, 1, chosen, router.gates);
      logSumExpSquareSum[layer * sequences + sequence] += lse * lse;
    }
    this.rowsDone += count;
    routingCounter.rows += count;
  }

  finish(): RoutingSummary {
    const { layers, tokens, experts } = this.shape;
    if (this.rowsDone !== this.endRow)
      throw new Error(
        `summary has rows up to ${this.rowsDone} of the ${layers * tokens} (expected up to ${this.endRow})`,
      );
    return {
      layers,
      experts,
      topK: this.topK,
      tokens,
      sequenceLengths: [...this.sequenceLengths],
      probSum: this.probSum,
      load: this.load,
      logSumExpSquareSum: this.logSumExpSquareSum,
      maxLogit: this.maxLogit,
    };
  }
}

/** Sums of one layer over a group of sequences. */
export interface GroupTotals {
  readonly tokens: number;
  /** `Σ_t p[t][e]`, per expert. */
  readonly probSum: Float64Array;
  /** `c[e]`, per expert. */
  readonly load: Float64Array;
}

/**
 * Whole-batch totals, per summary and layer: every family of the record (the
 * Switch and pooled LBLs, the global LBL's f, both CV², MaxVio) starts from
 * them, so they are summed once per summary rather than once per loss. Only
 * the whole batch is kept: caching every micro-batch group of a file of many
 * sequences would cost memory in proportion to it. Callers never write into
 * the arrays they are given.
 */
const wholeBatchCache = new WeakMap<RoutingSummary, GroupTotals[]>();

/** How many times whole-batch totals were summed (a test checks that lossRecord sums each layer once). */
export const totalsCounter = { wholeBatch: 0 };

export function groupTotals(summary: RoutingSummary, layer: number, group: SequenceGroup): GroupTotals {
  const { sequenceLengths } = summary;
  if (group.first === 0 && group.end === sequenceLengths.length) {
    let cached = wholeBatchCache.get(summary);
    if (!cached) wholeBatchCache.set(summary, (cached = []));
    if (!cached[layer]) {
      totalsCounter.wholeBatch++;
      cached[layer] = sumGroup(summary, layer, group);
    }
    return cached[layer];
  }
  return sumGroup(summary, layer, group);
}

function sumGroup(summary: RoutingSummary, layer: number, group: SequenceGroup): GroupTotals {
  const { experts, sequenceLengths } = summary;
  const sequences = sequenceLengths.length;
  const probSum = new Float64Array(experts);
  const load = new Float64Array(experts);
  let tokens = 0;
  for (let s = group.first; s < group.end; s++) {
    tokens += sequenceLengths[s];
    const base = (layer * sequences + s) * experts;
    for (let e = 0; e < experts; e++) {
      probSum[e] += summary.probSum[base + e];
      load[e] += summary.load[base + e];
    }
  }
  return { tokens, probSum, load };
}
