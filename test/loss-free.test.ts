// Auxiliary-loss-free balancing: biased selection, unbiased gates, sign update.
import { test } from "node:test";
import assert from "node:assert/strict";
import { biasBalancingStep, updateBias } from "../src/lib/loss-free.js";
import { summarize } from "../src/lib/summary.js";
import { maxVioOfLoad } from "../src/lib/losses/max-vio.js";
import { normalGenerator } from "../src/lib/random.js";
import type { RouterLogits } from "../src/lib/types.js";

test("a bias changes which experts are chosen but not their gate weights", () => {
  const logits: RouterLogits = { data: Float64Array.from([2, 1, 0, 0]), layers: 1, tokens: 1, experts: 4 };
  const p = [Math.exp(2), Math.exp(1), 1, 1].map((z, _, all) => z / all.reduce((a, b) => a + b, 0));
  const unbiased = biasBalancingStep(logits, 1, new Float64Array(4), 0.1);
  assert.deepEqual(Array.from(unbiased.chosen), [0]);
  const biased = biasBalancingStep(logits, 1, Float64Array.from([0, 0, 0, 1]), 0.1);
  assert.deepEqual(Array.from(biased.chosen), [3]);
  assert.ok(Math.abs(biased.gates[0] - p[3]) < 1e-15, "gate is the unbiased p of the chosen expert");
});

test("the sign rule moves each bias by exactly u toward the mean load", () => {
  // T = 4 tokens, k = 1, E = 4: mean load 1; loads 3, 1, 0, 0
  const next = updateBias(new Float64Array(4), Float64Array.from([3, 1, 0, 0]), 4, 4, 1, 0.001);
  assert.deepEqual(Array.from(next), [-0.001, 0, 0.001, 0.001]);
  const proportional = updateBias(new Float64Array(4), Float64Array.from([3, 1, 0, 0]), 4, 4, 1, 0.5, "proportional");
  assert.deepEqual(Array.from(proportional), [-1, 0, 0.5, 0.5]);
});

test("over a stream of skewed batches the bias drives MaxVio down", () => {
  const E = 8,
    k = 2,
    T = 256;
  const normal = normalGenerator(3);
  const skew = Array.from({ length: E }, (_, e) => 1.5 - 0.4 * e); // expert 0 favoured
  let bias: Float64Array = new Float64Array(E);
  const vio: number[] = [];
  for (let step = 0; step < 300; step++) {
    const data = new Float64Array(T * E).map((_, i) => skew[i % E] + normal());
    const result = biasBalancingStep({ data, layers: 1, tokens: T, experts: E }, k, bias, 0.01);
    vio.push(maxVioOfLoad(result.load, T, k));
    bias = result.bias;
  }
  const early = vio.slice(0, 5).reduce((a, b) => a + b) / 5;
  const late = vio.slice(-50).reduce((a, b) => a + b) / 50;
  assert.ok(early > 1, `skewed start: MaxVio ${early}`);
  assert.ok(late < 0.35 * early, `MaxVio ${early} → ${late}`);
});

test("a summary with a selection bias counts the biased choice and keeps the unbiased probabilities", () => {
  const logits: RouterLogits = { data: Float64Array.from([2, 1, 0, 0]), layers: 1, tokens: 1, experts: 4 };
  const plain = summarize(logits, 1);
  // p ≈ [0.61, 0.22, 0.08, 0.08]: +0.5 on expert 1 lifts it above expert 0
  const biased = summarize(logits, 1, [1], { selectionBias: [0, 0.5, 0, 0] });
  assert.deepEqual(Array.from(plain.load), [1, 0, 0, 0]);
  assert.deepEqual(Array.from(biased.load), [0, 1, 0, 0]);
  assert.deepEqual(Array.from(biased.probSum), Array.from(plain.probSum));
  assert.deepEqual(Array.from(summarize(logits, 1, [1], { selectionBias: [0, 0, 0, 0] }).load), Array.from(plain.load));
});

test("a biased summary's load equals the loss-free step's on random logits, per layer", () => {
  const L = 3,
    T = 200,
    E = 16,
    k = 4;
  const normal = normalGenerator(21);
  const logits: RouterLogits = {
    data: Float64Array.from({ length: L * T * E }, () => 2 * normal()),
    layers: L,
    tokens: T,
    experts: E,
  };
  const bias = Float64Array.from({ length: L * E }, () => 0.05 * normal());
  const step = biasBalancingStep(logits, k, bias, 0.001);
  const summary = summarize(logits, k, [T], { selectionBias: bias });
  assert.deepEqual(Array.from(summary.load), Array.from(step.load));
  assert.notDeepEqual(
    Array.from(summarize(logits, k).load),
    Array.from(step.load),
    "the bias is large enough to matter",
  );
});

test("a selection bias of the wrong size or with NaN is refused", () => {
  const logits: RouterLogits = { data: Float64Array.from([2, 1, 0, 0]), layers: 1, tokens: 1, experts: 4 };
  assert.throws(
    () => summarize(logits, 1, [1], { selectionBias: [0, 0] }),
    /selection bias has 2 values; layers × experts is 4/,
  );
  assert.throws(() => summarize(logits, 1, [1], { selectionBias: [0, NaN, 0, 0] }), /not finite at layer 0, expert 1/);
});

test("the your-logits pipeline routes each row once: the replay takes the summary's routing, with the same result as routing on its own", async () => {
  const { routingCounter } = await import("../src/lib/summary.js");
  const { bytesSource, planLogits, streamLogits, summaryForPlan } = await import("../src/lib/io/stream.js");
  const { BiasReplayBuilder } = await import("../src/lib/loss-free.js");
  const { writeNpy } = await import("../src/lib/io/npy.js");
  const layers = 2,
    tokens = 3000,
    experts = 16;
  const data = Float32Array.from(
    { length: layers * tokens * experts },
    (_, i) => Math.sin(i * 0.37) * 2 + Math.cos(i * 0.011),
  );
  const source = bytesSource(writeNpy(data, [layers, tokens, experts]), "replay.npy");
  const plan = await planLogits(source);
  // As the worker does it: one builder routes, the replay listens.
  const listening = new BiasReplayBuilder(plan, 2, 1e-3, 256);
  const summary = summaryForPlan(plan, 2, [tokens], { onRow: listening.onRow });
  const before = routingCounter.rows;
  await streamLogits(
    source,
    plan,
    (values, count) => summary.addRows(values, 0, count),
    () => {},
    { chunkBytes: 4096 },
  );
  assert.equal(routingCounter.rows - before, layers * tokens, "every row routed exactly once");
  // The same replay routing on its own.
  const alone = new BiasReplayBuilder(plan, 2, 1e-3, 256);
  await streamLogits(
    source,
    plan,
    (values, count) => alone.addRows(values, count),
    () => {},
    { chunkBytes: 4096 },
  );
  assert.deepEqual(listening.replay.maxVioUnbiased, alone.replay.maxVioUnbiased);
  assert.deepEqual(listening.replay.maxVio, alone.replay.maxVio);
  assert.deepEqual(listening.replay.biasFirstLayer.at(-1), alone.replay.biasFirstLayer.at(-1));
});

/**
 * The replay's definition written plainly: per layer, batches of `batchTokens`
 * tokens, each routed by biasedTopKRow (the top-k of p + b, ties to the lower
 * index) on the exact softmax, the bias updated after each batch.
 */
async function plainReplay(
  data: Float32Array,
  L: number,
  T: number,
  E: number,
  k: number,
  rate: number,
  batch: number,
) {
  const { softmaxRow, topKRow, biasedTopKRow } = await import("../src/lib/routing.js");
  const maxVio: number[][] = [];
  const maxVioUnbiased: number[][] = [];
  const biasFirstLayer: number[][] = [];
  const p = new Float64Array(E);
  const scores = new Float64Array(E);
  const chosen = new Int32Array(k);
  for (let l = 0; l < L; l++) {
    let bias: Float64Array = new Float64Array(E);
    maxVio.push([]);
    maxVioUnbiased.push([]);
    for (let first = 0; first < T; first += batch) {
      const end = Math.min(T, first + batch);
      const biased = new Float64Array(E);
      const plain = new Float64Array(E);
      for (let t = first; t < end; t++) {
        softmaxRow(data, (l * T + t) * E, E, p);
        topKRow(p, E, k, chosen);
        for (const e of chosen) plain[e]++;
        biasedTopKRow(p, bias, 0, E, k, scores, chosen);
        for (const e of chosen) biased[e]++;
      }
      maxVio[l].push(maxVioOfLoad(biased, end - first, k));
      maxVioUnbiased[l].push(maxVioOfLoad(plain, end - first, k));
      bias = updateBias(bias, biased, E, end - first, k, rate, "sign");
      if (l === 0) biasFirstLayer.push(Array.from(bias));
    }
  }
  return { batchTokens: batch, maxVio, maxVioUnbiased, biasFirstLayer };
}

test("the bias replay (scored by falling bias, stopping at its bound) picks exactly the top-k of p + b: ties, large biases, k = E", async () => {
  const { BiasReplayBuilder } = await import("../src/lib/loss-free.js");
  for (const [E, k] of [
    [8, 2],
    [64, 8],
    [64, 1],
    [16, 16],
  ])
    for (const rate of [1e-3, 0.1])
      for (const rounded of [false, true]) {
        const [L, T, batch] = [2, 1500, 50];
        const normal = normalGenerator(E * 31 + k);
        const data = Float32Array.from({ length: L * T * E }, (_, i) => 1.5 * normal() + (i % E) * 0.02);
        if (rounded) for (let i = 0; i < data.length; i++) data[i] = Math.round(data[i]); // many ties
        const replay = new BiasReplayBuilder({ layers: L, tokens: T, experts: E }, k, rate, batch);
        replay.addRows(data, L * T);
        const expected = await plainReplay(data, L, T, E, k, rate, batch);
        assert.deepEqual(replay.replay, expected, `E ${E}, k ${k}, rate ${rate}${rounded ? ", ties" : ""}`);
        // the bias changed some choices (not with k = E: every expert takes every token)
        const unbiased = expected.maxVioUnbiased.flat();
        if (k < E)
          assert.ok(
            expected.maxVio.flat().some((v, i) => v !== unbiased[i]),
            `the bias changed no batch's load (E ${E}, k ${k}, rate ${rate})`,
          );
      }
});
