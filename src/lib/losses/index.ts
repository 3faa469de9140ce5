/**
 * Every number of the specification's output record, from one summary: one
 * value per registered descriptor (registry.ts), plus the loads.
 */
import * as lbl from "./lbl.js";
import * as cv2 from "./cv2.js";
import * as maxVio from "./max-vio.js";
import * as zLoss from "./z-loss.js";
import { lossName, type LossDescriptor } from "./descriptor.js";
import { lossDescriptors, type LossName, type RegisteredLoss } from "./registry.js";
import { summarize, type RoutingSummary } from "../summary.js";
import type { RouterLogits } from "../types.js";
import { validateMicroBatch } from "../validate.js";

export { lbl, cv2, maxVio, zLoss, lossDescriptors, lossName };
export type { LossName, LossDescriptor };

type Families = RegisteredLoss["family"];

/** The output record of `moe-lab losses`: all values unweighted; its keys follow the registry. */
export type LossRecord = {
  [F in Families]: { [D in RegisteredLoss as D["family"] extends F ? D["variant"] : never]: number };
} & {
  /** `[L][E]` routing-slot counts. */
  load: number[][];
};

/**
 * Cheap: O(layers × sequences × experts). Call again freely when `m` changes.
 * `descriptors` defaults to the registry; a caller (or a test) may pass more.
 */
export function lossRecord(
  summary: RoutingSummary,
  microBatchSequences = 1,
  descriptors: readonly LossDescriptor[] = lossDescriptors,
): LossRecord {
  validateMicroBatch(microBatchSequences);
  const record: Record<string, Record<string, number> | number[][]> = {};
  for (const d of descriptors) {
    const family = (record[d.family] ??= {}) as Record<string, number>;
    family[d.variant] = d.value(summary, { microBatchSequences });
  }
  record.load = layerLoads(summary);
  return record as LossRecord;
}

/** `c[l][e]` over the whole batch. */
export function layerLoads(summary: RoutingSummary): number[][] {
  const { layers, experts } = summary;
  const sequences = summary.sequenceLengths.length;
  return Array.from({ length: layers }, (_, l) => {
    const row = new Array<number>(experts).fill(0);
    for (let s = 0; s < sequences; s++)
      for (let e = 0; e < experts; e++) row[e] += summary.load[(l * sequences + s) * experts + e];
    return row;
  });
}

/** Both phases in one call, for the CLI and tests. */
export function computeLosses(
  logits: RouterLogits,
  topK: number,
  sequenceLengths?: readonly number[],
  microBatchSequences = 1,
): LossRecord {
  return lossRecord(summarize(logits, topK, sequenceLengths), microBatchSequences);
}

/** Reads `record["lbl"]["global"]` from the name `"lbl.global"` (any descriptor's name). */
export function lossByName(record: LossRecord, name: LossName | string): number {
  const dot = name.indexOf(".");
  const family = (record as unknown as Record<string, Record<string, number> | undefined>)[name.slice(0, dot)];
  const value = family?.[name.slice(dot + 1)];
  if (typeof value !== "number") throw new Error(`no loss named ${name} in this record`);
  return value;
}
