/**
 * A capacity applied to a file as it streams: each micro-batch (the tokens
 * one router call sees in Megatron-LM, where the capacity is computed) of
 * each layer is buffered, dropped by `applyCapacity`, and counted. It rides
 * on a SummaryBuilder as its row listener, so the file is still read once.
 */
import { applyCapacity, switchLblFromLoad, type DropPolicy } from "./capacity.js";
import { groupTotals, type RoutingSummary, type RowListener } from "./summary.js";
import { LabInputError } from "./types.js";

export interface CapacityLayer {
  /** Dropped slots over all slots of the layer. */
  readonly droppedShare: number;
  /** Tokens that lost every expert, over the layer's tokens. */
  readonly tokensFullyDropped: number;
  /** The smallest and largest capacity of the layer's micro-batches (they differ when sequences do). */
  readonly capacity: readonly [number, number];
  /** The global-batch Switch LBL with f counted before the drop (the route the router chose)… */
  readonly lblBefore: number;
  /** …and after it (what a loss that counts the dispatched slots reads; Megatron-LM #1513). */
  readonly lblAfter: number;
}

export class CapacityCounter {
  private readonly groupEnds: number[];
  private readonly chosen: Int32Array;
  private readonly gates: Float64Array;
  private readonly loadBefore: Float64Array;
  private readonly loadAfter: Float64Array;
  private readonly dropped: Float64Array;
  private readonly fullyDropped: Float64Array;
  private readonly capacities: [number, number][];
  private group = 0;
  private groupStart = 0;

  constructor(
    private readonly shape: { layers: number; tokens: number; experts: number },
    private readonly topK: number,
    sequenceLengths: readonly number[],
    microBatchSequences: number,
    private readonly capacityFactor: number,
    private readonly policy: DropPolicy,
  ) {
    if (!(capacityFactor > 0)) throw new LabInputError(`the capacity factor must be > 0; got ${capacityFactor}`);
    if (policy !== "probs" && policy !== "position")
      throw new LabInputError(`unknown drop policy '${policy}'; known: probs, position`);
    if (!(microBatchSequences >= 1)) throw new LabInputError(`micro-batches need at least one sequence`);
    this.groupEnds = [];
    let end = 0;
    for (let s = 0; s < sequenceLengths.length; s++) {
      end += sequenceLengths[s];
      if ((s + 1) % microBatchSequences === 0 || s === sequenceLengths.length - 1) this.groupEnds.push(end);
    }
    let longest = 0;
    this.groupEnds.reduce((start, e) => ((longest = Math.max(longest, e - start)), e), 0);
    const { layers, experts } = shape;
    this.chosen = new Int32Array(longest * topK);
    this.gates = new Float64Array(longest * topK);
    this.loadBefore = new Float64Array(layers * experts);
    this.loadAfter = new Float64Array(layers * experts);
    this.dropped = new Float64Array(layers);
    this.fullyDropped = new Float64Array(layers);
    this.capacities = Array.from({ length: layers }, () => [Infinity, 0]);
  }

  /** Pass as SummaryOptions.onRow (combineListeners for more than one). */
  readonly onRow: RowListener = (layer, token, scores, inv, chosen, gates) => {
    const { topK } = this;
    const { experts } = this.shape;
    if (token === 0) {
      this.group = 0;
      this.groupStart = 0;
    }
    const at = (token - this.groupStart) * topK;
    for (let i = 0; i < topK; i++) {
      this.chosen[at + i] = chosen[i];
      this.gates[at + i] = gates ? gates[i] : scores[chosen[i]] * inv;
    }
    if (token + 1 === this.groupEnds[this.group]) {
      this.closeGroup(layer, token + 1 - this.groupStart);
      this.groupStart = token + 1;
      this.group++;
    }
  };

  private closeGroup(layer: number, tokens: number): void {
    const { topK } = this;
    const { experts } = this.shape;
    const result = applyCapacity(
      this.chosen.subarray(0, tokens * topK),
      this.gates.subarray(0, tokens * topK),
      experts,
      topK,
      this.capacityFactor,
      this.policy,
    );
    for (let e = 0; e < experts; e++) {
      this.loadBefore[layer * experts + e] += result.loadBefore[e];
      this.loadAfter[layer * experts + e] += result.loadAfter[e];
    }
    this.dropped[layer] += result.droppedShare * tokens * topK;
    this.fullyDropped[layer] += result.tokensFullyDropped;
    const range = this.capacities[layer];
    range[0] = Math.min(range[0], result.capacity);
    range[1] = Math.max(range[1], result.capacity);
  }

  /** Per layer; the LBL's P sums are the summary's, which saw the same scores. */
  finish(summary: RoutingSummary): CapacityLayer[] {
    const { layers, tokens, experts } = this.shape;
    const { topK } = this;
    const everySequence = { first: 0, end: summary.sequenceLengths.length };
    return Array.from({ length: layers }, (_, l) => {
      const slice = (a: Float64Array) => a.subarray(l * experts, (l + 1) * experts);
      const probSum = groupTotals(summary, l, everySequence).probSum;
      return {
        droppedShare: this.dropped[l] / (tokens * topK),
        tokensFullyDropped: this.fullyDropped[l] / tokens,
        capacity: this.capacities[l],
        lblBefore: switchLblFromLoad(slice(this.loadBefore), probSum, tokens, topK),
        lblAfter: switchLblFromLoad(slice(this.loadAfter), probSum, tokens, topK),
      };
    });
  }
}
