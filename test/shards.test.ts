// A file read by several workers, one shard of layers each: every part of the
// answer (summary, bias replay, aux map, error) must equal one worker's.
import { test } from "node:test";
import assert from "node:assert/strict";
import { layerShards, mergeShards, summarize, SummaryBuilder } from "../src/lib/summary.js";
import { bytesSource, planLogits, streamLogits, summaryForPlan, type ByteSource } from "../src/lib/io/stream.js";
import { writeNpy } from "../src/lib/io/npy.js";
import { writeSafetensors } from "../src/lib/io/safetensors.js";
import { BiasReplayBuilder } from "../src/lib/loss-free.js";
import { AuxMapCounter } from "../src/lib/aux-map.js";
import { mergeSummarized, shardsWithin, type Summarized } from "../src/workers/logits-shards.js";
import { normalGenerator } from "../src/lib/random.js";
import { lossRecord } from "../src/lib/losses/index.js";
import type { RoutingConvention } from "../src/lib/conventions.js";
import type { LayerRange } from "../src/lib/summary.js";

const [layers, tokens, experts, topK] = [5, 700, 16, 4];
const lengths = [100, 250, 350];
const normal = normalGenerator(11);
const data = Float32Array.from({ length: layers * tokens * experts }, (_, i) => 1.3 * normal() + (i % experts) * 0.05);

test("layerShards cuts the layers into contiguous, nearly equal ranges, never more than the layers", () => {
  assert.deepEqual(layerShards(16, 2), [
    { first: 0, end: 8 },
    { first: 8, end: 16 },
  ]);
  assert.deepEqual(layerShards(5, 2), [
    { first: 0, end: 2 },
    { first: 2, end: 5 },
  ]);
  assert.deepEqual(layerShards(1, 4), [{ first: 0, end: 1 }]);
  assert.deepEqual(layerShards(3, 4), [
    { first: 0, end: 1 },
    { first: 1, end: 2 },
    { first: 2, end: 3 },
  ]);
  for (let L = 1; L <= 20; L++)
    for (let n = 1; n <= 6; n++) {
      const shards = layerShards(L, n);
      assert.equal(shards[0].first, 0);
      assert.equal(shards.at(-1)!.end, L);
      shards.forEach((s, i) => assert.ok(s.end > s.first && (i === 0 || s.first === shards[i - 1].end)));
      const sizes = shards.map((s) => s.end - s.first);
      assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `${L} layers over ${n}`);
    }
});

test("summaries of layer shards merge into the whole batch's summary, bit for bit", () => {
  const logits = { data, layers, tokens, experts };
  const whole = summarize(logits, topK, lengths);
  for (const n of [1, 2, 3, 5]) {
    const parts = layerShards(layers, n).map((range) => {
      const builder = new SummaryBuilder(logits, topK, lengths, { layers: range });
      builder.addRows(data, range.first * tokens, (range.end - range.first) * tokens);
      return builder.finish();
    });
    const merged = mergeShards(parts);
    assert.deepEqual(merged, whole, `${n} shards`);
    assert.deepEqual(lossRecord(merged, 2), lossRecord(whole, 2));
  }
  // with a selection bias too (the loss-free checkpoint's files)
  const bias = Float64Array.from({ length: layers * experts }, (_, i) => 0.01 * Math.sin(i));
  const biased = summarize(logits, topK, lengths, { selectionBias: bias });
  const parts = layerShards(layers, 2).map((range) => {
    const builder = new SummaryBuilder(logits, topK, lengths, { layers: range, selectionBias: bias });
    builder.addRows(data, range.first * tokens, (range.end - range.first) * tokens);
    return builder.finish();
  });
  assert.deepEqual(mergeShards(parts), biased);
});

test("a shard refuses rows past its last layer, a finish before its last row, and a range outside the batch", () => {
  const logits = { data, layers, tokens, experts };
  const builder = new SummaryBuilder(logits, topK, lengths, { layers: { first: 1, end: 2 } });
  assert.throws(() => builder.addRows(data, tokens, tokens + 1), /would pass this summary's last row/);
  builder.addRows(data, tokens, tokens - 1);
  assert.throws(() => builder.finish(), /expected up to/);
  for (const range of [
    { first: 2, end: 2 },
    { first: -1, end: 1 },
    { first: 0, end: layers + 1 },
    { first: 0.5, end: 2 },
  ])
    assert.throws(() => new SummaryBuilder(logits, topK, lengths, { layers: range }), /not a range/);
});

/** What one worker answers for `layers` of a file (the worker's steps, without the worker). */
async function answer(
  source: ByteSource,
  range: LayerRange | undefined,
  routing: "lab" | "deepseek",
  chunkBytes: number,
): Promise<Summarized> {
  const plan = await planLogits(source);
  const layers = range ?? { first: 0, end: plan.layers };
  // a sigmoid router with groups (the aux map differs from the route there)
  const convention: RoutingConvention | undefined =
    routing === "deepseek"
      ? {
          score: "sigmoid",
          topK,
          preSoftmax: false,
          normalizeGates: true,
          scalingFactor: 2.5,
          groups: { count: 4, keep: 2, rule: "max" },
        }
      : undefined;
  const replay = convention ? null : new BiasReplayBuilder(plan, topK, 1e-3, 64);
  const auxMap = convention ? new AuxMapCounter(plan, topK) : null;
  const summary = summaryForPlan(plan, topK, lengths, {
    ...(replay ? { onRow: replay.onRow } : {}),
    ...(auxMap ? { onRow: auxMap.onRow } : {}),
    ...(convention ? { convention } : {}),
    layers,
  });
  await streamLogits(source, plan, (values, count) => summary.addRows(values, 0, count), undefined, {
    chunkBytes,
    layers,
  });
  const finished = summary.finish();
  return {
    summary: finished,
    replay: replay ? replay.replay : null,
    routing: convention ?? null,
    auxMap: auxMap ? auxMap.finish(finished).slice(layers.first, layers.end) : null,
    warning: null,
    ms: 0,
  };
}

test("a file streamed by shards (.npy, and .safetensors with a tensor per layer) answers as one worker: summary, replay and aux map", async () => {
  const perLayer: Record<string, { data: Float32Array; shape: number[] }> = {};
  for (let l = 0; l < layers; l++)
    perLayer[`model.layers.${l}.router_logits`] = {
      data: data.slice(l * tokens * experts, (l + 1) * tokens * experts),
      shape: [tokens, experts],
    };
  const files = [
    bytesSource(writeNpy(data, [layers, tokens, experts]), "logits.npy"),
    bytesSource(writeSafetensors(perLayer), "logits.safetensors"),
  ];
  for (const source of files)
    for (const routing of ["lab", "deepseek"] as const) {
      const one = await answer(source, undefined, routing, 3000);
      for (const n of [2, 3]) {
        const shards = layerShards(layers, n);
        // chunks that do not fall on layer boundaries
        const parts = await Promise.all(shards.map((range) => answer(source, range, routing, 3000)));
        const merged = mergeSummarized(parts, shards);
        const label = `${source.name}, ${routing}, ${n} shards`;
        assert.deepEqual(merged.summary, one.summary, label);
        assert.deepEqual(merged.replay, one.replay, label);
        assert.deepEqual(merged.auxMap, one.auxMap, label);
        if (routing === "lab") assert.ok(merged.replay!.maxVio.every((batches) => batches.length > 0));
        else assert.equal(merged.auxMap!.length, layers);
      }
    }
});

test("a shard reads only its own layers' bytes, and names a bad value by its place in the whole file", async () => {
  const bad = data.slice();
  bad[(3 * tokens + 17) * experts + 5] = Number.NaN; // layer 3, token 17, expert 5
  const source = bytesSource(writeNpy(bad, [layers, tokens, experts]), "bad.npy");
  const plan = await planLogits(source);
  let rows = 0;
  let total = 0;
  await streamLogits(
    source,
    plan,
    (_, count) => (rows += count),
    (_, t) => (total = t),
    { chunkBytes: 4096, layers: { first: 0, end: 2 } },
  );
  assert.equal(rows, 2 * tokens, "the first shard never reads layer 3");
  assert.equal(total, 2 * tokens * experts * 4, "its progress counts its own bytes");
  await assert.rejects(
    streamLogits(source, plan, () => {}, undefined, { chunkBytes: 4096, layers: { first: 2, end: 5 } }),
    /layer 3, token 17, expert 5/,
  );
});

test("with consumerChecksValues the stream skips its own check, and the summary's check names the same place", async () => {
  const bad = data.slice();
  bad[(3 * tokens + 17) * experts + 5] = Number.POSITIVE_INFINITY;
  const source = bytesSource(writeNpy(bad, [layers, tokens, experts]), "bad.npy");
  const plan = await planLogits(source);
  let delivered = 0;
  await streamLogits(source, plan, (_, count) => (delivered += count), undefined, { consumerChecksValues: true });
  assert.equal(delivered, layers * tokens, "the stream itself no longer refuses the row");
  const summary = summaryForPlan(plan, topK, lengths);
  await assert.rejects(
    streamLogits(source, plan, (values, count) => summary.addRows(values, 0, count), undefined, {
      consumerChecksValues: true,
    }),
    /layer 3, token 17, expert 5 is Infinity/,
  );
});

test("a file cut into many sequences is read by fewer workers: the shards' summaries and their merge stay within the budget", () => {
  const MiB = 2 ** 20;
  assert.equal(shardsWithin(2, 1 * MiB, 512 * MiB), 2, "small summaries: every worker");
  assert.equal(shardsWithin(4, 100 * MiB, 512 * MiB), 4, "4 shards + the merge = 500 MiB");
  assert.equal(shardsWithin(4, 120 * MiB, 512 * MiB), 3, "5 × 120 MiB would not fit, 4 × 120 MiB does");
  assert.equal(shardsWithin(4, 200 * MiB, 512 * MiB), 1, "two shards and a merge would take 600 MiB: one worker");
  assert.equal(
    shardsWithin(4, 1024 * MiB, 512 * MiB),
    1,
    "over the budget alone: still one worker (the summary's own limit applies)",
  );
});
