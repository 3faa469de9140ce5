/**
 * CV² losses of Shazeer et al. (2017): `Var(v) / Mean(v)²` of the importance
 * `Σ_t p[t][e]` and of the load `c[e]`, population variance, averaged over layers.
 */
import { wholeBatch } from "../batching.js";
import { groupTotals, type RoutingSummary } from "../summary.js";
import { cv2Population, cv2Unbiased } from "./reduce.js";

export type VarianceKind = "population" | "unbiased";

function perLayer(summary: RoutingSummary, pick: "probSum" | "load", kind: VarianceKind): number[] {
  const all = wholeBatch(summary.sequenceLengths.length)[0];
  const cv2 = kind === "population" ? cv2Population : cv2Unbiased;
  return Array.from({ length: summary.layers }, (_, l) => cv2(groupTotals(summary, l, all)[pick]));
}

/** `cv2.importance` of each layer. */
export function importancePerLayer(summary: RoutingSummary, kind: VarianceKind = "population"): number[] {
  return perLayer(summary, "probSum", kind);
}

/** `cv2.load` of each layer. */
export function loadPerLayer(summary: RoutingSummary, kind: VarianceKind = "population"): number[] {
  return perLayer(summary, "load", kind);
}
