// The load-balancing loss's blind spots, each as the page shows it live:
// a blind value with a working gradient, a value below 1 with an idle expert,
// and Hugging Face's pooling reading exactly k with zero gradient.
import { test } from "node:test";
import assert from "node:assert/strict";
import { allEqual, belowOneWithIdleExpert, complementaryLayers } from "../src/lib/blind-spots.js";
import { lossGradient } from "../src/lib/losses/gradients.js";
import { computeLosses } from "../src/lib/losses/index.js";
import { switchPerLayer } from "../src/lib/losses/lbl.js";
import { summarize } from "../src/lib/summary.js";
import { assertClose } from "./helpers.js";

test("all logits equal: the value reads 1, the gradient pushes tokens off the crowded experts, (1/T)(f_j − 1/E) per layer", () => {
  const E = 8,
    k = 2,
    T = 16,
    L = 1;
  const logits = allEqual(L, T, E);
  const record = computeLosses(logits, k);
  assert.equal(record.lbl.switch, 1);
  assertClose(record.max_vio.global, E / k - 1, 1e-12);
  const g = lossGradient(logits, "lbl.switch", { topK: k });
  // Experts 0 and 1 hold every slot: f = ½ each, 0 for the rest.
  for (let t = 0; t < T; t++) {
    for (let e = 0; e < E; e++)
      assertClose(g[t * E + e], (1 / T) * ((e < k ? 1 / k : 0) - 1 / E), 1e-12, `token ${t}, expert ${e}`);
  }
  assertClose(g[0], 0.0234375, 1e-12, "the review's +0.0234 on a crowded expert");
  assertClose(g[2], -0.0078125, 1e-12, "and −0.0078 on the others");
});

test("a loss below 1 while an expert is idle", () => {
  const { logits, topK } = belowOneWithIdleExpert();
  const summary = summarize(logits, topK);
  assert.deepEqual(Array.from(summary.load), [2, 1, 0]);
  const value = switchPerLayer(summary)[0];
  assert.ok(value < 1, `lbl.switch ${value} reads below 1`);
  // By hand: p = (0.50188, 0.00124, 0.49688) for the first two tokens, its mirror for the
  // third; P = (0.33500, 0.16812, 0.49688); 3 · (⅔ · 0.33500 + ⅓ · 0.16812) = 0.8381.
  assertClose(value, 0.8381, 1e-4);
  assertClose(computeLosses(logits, topK).max_vio.global, 1, 1e-12);
});

test("Hugging Face's pooling: exactly k and zero gradient for complementary imbalance, while each layer reads far above 1", () => {
  const { logits, topK } = complementaryLayers();
  const record = computeLosses(logits, topK);
  assertClose(record.lbl.hf, topK, 1e-12, "lbl.hf");
  const g = lossGradient(logits, "lbl.hf", { topK });
  assert.ok(
    g.every((v) => Math.abs(v) <= 1e-12),
    `max |∂lbl.hf/∂x| = ${Math.max(...g.map(Math.abs))}`,
  );
  const perLayer = switchPerLayer(summarize(logits, topK));
  // Each layer: f = (½, ½, 0, 0), P ≈ (0.4977, 0.4977, 0.0024, 0.0024): 4 · 0.4977 ≈ 1.99.
  for (const value of perLayer) assertClose(value, 1.9906, 1e-4, "per-layer lbl.switch");
  assert.equal(record.max_vio.global, 1);
  const switchGradient = lossGradient(logits, "lbl.switch", { topK });
  assert.ok(Math.max(...switchGradient.map(Math.abs)) > 1e-4, "the per-layer loss still pushes");
});

test("the z-loss's routing force: its centred gradient is 2·lse·(p − 1/E), and ÷k scales it by 1/k", async () => {
  const { centeredNorm } = await import("../src/lib/losses/routing-force.js");
  const { softmaxRow } = await import("../src/lib/routing.js");
  const logits = { data: Float64Array.from([2, 0, -1, 0.5, 1, 1, 1, 1]), layers: 1, tokens: 2, experts: 4 };
  const g = lossGradient(logits, "z_loss.st_moe", { topK: 2 });
  // By hand, row by row: (2/T) · lse · (p_j − 1/E).
  let expected = 0;
  for (let t = 0; t < 2; t++) {
    const p = new Float64Array(4);
    const lse = softmaxRow(logits.data, t * 4, 4, p);
    for (let e = 0; e < 4; e++) expected += ((2 / 2) * lse * (p[e] - 1 / 4)) ** 2;
  }
  assertClose(centeredNorm(g, logits), Math.sqrt(expected), 1e-12);
  // The all-equal row has no routing force at all, however large its lse.
  assertClose(centeredNorm(g.subarray(4), logits), 0, 1e-12, "flat row", 1e-15);
  const gk = lossGradient(logits, "z_loss.olmoe", { topK: 2 });
  assertClose(centeredNorm(gk, logits), centeredNorm(g, logits) / 2, 1e-12, "÷k");
});
