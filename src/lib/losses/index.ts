/**
 * Every number of the specification's output record, from one summary.
 */
import * as lbl from "./lbl.js";
import * as cv2 from "./cv2.js";
import * as maxVio from "./max-vio.js";
import * as zLoss from "./z-loss.js";
import { mean } from "./reduce.js";
import { summarize, type RoutingSummary } from "../summary.js";
import type { RouterLogits } from "../types.js";

export { lbl, cv2, maxVio, zLoss };

/** The output record of `moe-lab losses`: all values unweighted. */
export interface LossRecord {
  lbl: { switch: number; hf: number; sequence: number; micro_batch: number; global: number };
  z_loss: { st_moe: number; olmoe: number };
  cv2: { importance: number; load: number };
  max_vio: { global: number; micro_batch: number };
  /** `[L][E]` routing-slot counts. */
  load: number[][];
}

/** Cheap: O(layers × sequences × experts). Call again freely when `m` changes. */
export function lossRecord(summary: RoutingSummary, microBatchSequences = 1): LossRecord {
  return {
    lbl: {
      switch: mean(lbl.switchPerLayer(summary)),
      hf: lbl.hfPooled(summary),
      sequence: mean(lbl.sequencePerLayer(summary)),
      micro_batch: mean(lbl.microBatchPerLayer(summary, microBatchSequences)),
      global: mean(lbl.globalPerLayer(summary, microBatchSequences)),
    },
    z_loss: { st_moe: zLoss.stMoe(summary), olmoe: zLoss.olmoe(summary) },
    cv2: { importance: mean(cv2.importancePerLayer(summary)), load: mean(cv2.loadPerLayer(summary)) },
    max_vio: { global: mean(maxVio.globalPerLayer(summary)), micro_batch: mean(maxVio.microBatchPerLayer(summary, microBatchSequences)) },
    load: layerLoads(summary),
  };
}

/** `c[l][e]` over the whole batch. */
export function layerLoads(summary: RoutingSummary): number[][] {
  const { layers, experts } = summary;
  const sequences = summary.sequenceLengths.length;
  return Array.from({ length: layers }, (_, l) => {
    const row = new Array<number>(experts).fill(0);
    for (let s = 0; s < sequences; s++) for (let e = 0; e < experts; e++) row[e] += summary.load[(l * sequences + s) * experts + e];
    return row;
  });
}

/** Both phases in one call, for the CLI and tests. */
export function computeLosses(logits: RouterLogits, topK: number, sequenceLengths?: readonly number[], microBatchSequences = 1): LossRecord {
  return lossRecord(summarize(logits, topK, sequenceLengths), microBatchSequences);
}

/** Names of the scalar entries of a record, as `family.variant`. */
export type LossName = {
  [F in Exclude<keyof LossRecord, "load">]: `${F}.${Extract<keyof LossRecord[F], string>}`;
}[Exclude<keyof LossRecord, "load">];

/** Reads `record["lbl"]["global"]` from the name `"lbl.global"`. */
export function lossByName(record: LossRecord, name: LossName): number {
  const [family, variant] = name.split(".") as [Exclude<keyof LossRecord, "load">, string];
  return (record[family] as Record<string, number>)[variant];
}
