/**
 * The map an auxiliary loss counts against the route that was dispatched.
 * Megatron-LM computes its aux loss on its own fresh top-k of the per-token
 * normalised scores, without the expert bias, the groups or a capacity
 * (`megatron/core/transformer/moe/moe_utils.py`
 * `compute_routing_scores_for_aux_loss` @00611e6e): with a bias or groups the
 * loss balances a map that differs from where tokens went. This listener rides
 * on a SummaryBuilder built with a convention (it receives each row's balance
 * scores and dispatched experts) and counts both, per layer, over the whole batch.
 */
import { topKRow } from "./routing.js";
import { maxVioOfLoad } from "./losses/max-vio.js";
import { switchLblFromLoad } from "./capacity.js";
import { groupTotals, type RoutingSummary, type RowListener } from "./summary.js";

export interface AuxMapLayer {
  /** MaxVio of the dispatched route (bias, groups included). */
  readonly maxVioRoute: number;
  /** MaxVio of the map the aux loss counts. */
  readonly maxVioAuxMap: number;
  /** Share of tokens whose set of k experts differs between the two. */
  readonly tokensDiffering: number;
  /** The global-batch Switch LBL, `E·Σ f_e·P_e`, with f from the dispatched route. */
  readonly lblRoute: number;
  /** The same with f from the aux map: what Megatron-LM's aux loss reads. */
  readonly lblAuxMap: number;
}

export class AuxMapCounter {
  private readonly routeLoad: Float64Array;
  private readonly auxLoad: Float64Array;
  private readonly differing: Float64Array;
  private readonly auxChosen: Int32Array;
  private readonly mark: Uint8Array;

  constructor(
    private readonly shape: { layers: number; tokens: number; experts: number },
    private readonly topK: number,
  ) {
    const { layers, experts } = shape;
    this.routeLoad = new Float64Array(layers * experts);
    this.auxLoad = new Float64Array(layers * experts);
    this.differing = new Float64Array(layers);
    this.auxChosen = new Int32Array(topK);
    this.mark = new Uint8Array(experts);
  }

  /** Pass as SummaryOptions.onRow (with a convention, `scores·inv` are the balance scores). */
  readonly onRow: RowListener = (layer, _token, scores, _inv, chosen) => {
    const { experts } = this.shape;
    const { topK, auxChosen, mark } = this;
    const base = layer * experts;
    topKRow(scores, experts, topK, auxChosen);
    for (let i = 0; i < topK; i++) {
      this.routeLoad[base + chosen[i]]++;
      this.auxLoad[base + auxChosen[i]]++;
      mark[chosen[i]] = 1;
    }
    let same = 0;
    for (let i = 0; i < topK; i++) same += mark[auxChosen[i]];
    for (let i = 0; i < topK; i++) mark[chosen[i]] = 0;
    if (same !== topK) this.differing[layer]++;
  };

  /** Per layer; the LBL's P sums are the summary's, which saw the same balance scores. */
  finish(summary: RoutingSummary): AuxMapLayer[] {
    const { layers, tokens, experts } = this.shape;
    const { topK } = this;
    const everySequence = { first: 0, end: summary.sequenceLengths.length };
    return Array.from({ length: layers }, (_, l) => {
      const route = this.routeLoad.subarray(l * experts, (l + 1) * experts);
      const aux = this.auxLoad.subarray(l * experts, (l + 1) * experts);
      const p = groupTotals(summary, l, everySequence).probSum;
      return {
        maxVioRoute: maxVioOfLoad(route, tokens, topK),
        maxVioAuxMap: maxVioOfLoad(aux, tokens, topK),
        tokensDiffering: this.differing[l] / tokens,
        lblRoute: switchLblFromLoad(route, p, tokens, topK),
        lblAuxMap: switchLblFromLoad(aux, p, tokens, topK),
      };
    });
  }
}
