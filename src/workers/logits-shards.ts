/**
 * A file's layers read by several workers at once (one shard of layers
 * each: the summary pass is CPU-bound, about 80 MB/s per core), and their
 * answers put back together into the answer one worker would have given.
 * Each layer is summarised, replayed and counted by exactly one worker, so
 * nothing is added in a different order: the merge is exact.
 */
import { mergeShards, type LayerRange } from "../lib/summary.js";
import type { BiasReplay } from "../lib/loss-free.js";
import type { LogitsWorkerMessage } from "./logits-protocol.js";

/** A worker's "summarized" answer without the message fields. */
export type Summarized = Omit<Extract<LogitsWorkerMessage, { type: "summarized" }>, "type" | "id">;

/**
 * How many shards to read a file with: at most `workers`, and no more than
 * fit in `budget` bytes with their merge, each shard's summary taking
 * `summaryBytes` (it holds every layer's sums, zero outside its own). One when
 * even two do not fit.
 */
export function shardsWithin(workers: number, summaryBytes: number, budget: number): number {
  const fit = Math.floor(budget / summaryBytes) - 1;
  return Math.max(1, Math.min(workers, fit));
}

/** The shard that holds `layer`. */
function ownerOf(shards: readonly LayerRange[], layer: number): number {
  const i = shards.findIndex((s) => s.first <= layer && layer < s.end);
  if (i < 0) throw new Error(`no shard holds layer ${layer}`);
  return i;
}

/** The bias replay of every layer from the replays of layer shards (each replays only its own layers). */
export function mergeReplays(replays: readonly BiasReplay[], shards: readonly LayerRange[]): BiasReplay {
  const layers = shards[shards.length - 1].end;
  const pick = (key: "maxVio" | "maxVioUnbiased") =>
    Array.from({ length: layers }, (_, l) => replays[ownerOf(shards, l)][key][l]);
  return {
    batchTokens: replays[0].batchTokens,
    maxVio: pick("maxVio"),
    maxVioUnbiased: pick("maxVioUnbiased"),
    biasFirstLayer: replays[ownerOf(shards, 0)].biasFirstLayer,
  };
}

/** One answer from the answers for `shards` (in the same order, covering layers 0 … L−1 in turn). */
export function mergeSummarized(parts: readonly Summarized[], shards: readonly LayerRange[]): Summarized {
  if (parts.length !== shards.length || parts.length === 0) throw new Error("one answer per shard is needed");
  shards.forEach((s, i) => {
    if (s.first !== (i === 0 ? 0 : shards[i - 1].end)) throw new Error("the shards must cover the layers in order");
  });
  if (parts.length === 1) return parts[0];
  const replays = parts.map((p) => p.replay);
  const auxMaps = parts.map((p) => p.auxMap);
  return {
    summary: mergeShards(parts.map((p) => p.summary)),
    replay: replays.every((r) => r !== null) ? mergeReplays(replays as BiasReplay[], shards) : null,
    routing: parts[0].routing,
    auxMap: auxMaps.every((m) => m !== null) ? auxMaps.flatMap((m) => m!) : null,
    // the check looks at the first rows read; the first shard's are the file's first, as one worker's would be
    warning: parts[0].warning,
    // the shards run side by side: the answer is ready when the slowest is
    ms: Math.max(...parts.map((p) => p.ms)),
  };
}
