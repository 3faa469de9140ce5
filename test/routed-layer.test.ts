// A layer routed slot by slot: the dispatched route, the aux loss's own map,
// and the comparisons the production-routers page draws from them.
import { test } from "node:test";
import assert from "node:assert/strict";
import { differingTokens, loadOf, routeLayer } from "../src/lib/routed-layer.js";
import { routingPresets } from "../src/lib/presets.js";
import { summarize } from "../src/lib/summary.js";
import { normalGenerator } from "../src/lib/random.js";

const tokens = 50,
  experts = 16;
const normal = normalGenerator(3);
const logits = Float64Array.from({ length: tokens * experts }, () => normal());

test("the routed layer's load equals the summary's under the same convention and bias", () => {
  const convention = routingPresets["deepseek-v3"].convention(4);
  const bias = Float64Array.from({ length: experts }, (_, e) => (e % 3) * 0.1);
  const layer = routeLayer(logits, tokens, experts, convention, bias);
  const summary = summarize({ data: logits, layers: 1, tokens, experts }, 4, [tokens], {
    convention,
    selectionBias: bias,
  });
  assert.deepEqual(Array.from(loadOf(layer.chosen, experts)), Array.from(summary.load));
  layer.balanceSum.forEach((v, e) => assert.ok(Math.abs(v - summary.probSum[e]) < 1e-12));
});

test("without bias or groups the aux map is the route; a bias moves the route and not the map", () => {
  const plain = routeLayer(logits, tokens, experts, {
    score: "sigmoid",
    topK: 4,
    preSoftmax: true,
    normalizeGates: true,
    scalingFactor: 1,
  });
  assert.equal(differingTokens(plain.chosen, plain.auxChosen, 4), 0);
  const bias = Float64Array.from({ length: experts }, (_, e) => (e < 4 ? 0.3 : 0));
  const biased = routeLayer(
    logits,
    tokens,
    experts,
    { score: "sigmoid", topK: 4, preSoftmax: true, normalizeGates: true, scalingFactor: 1 },
    bias,
  );
  assert.deepEqual(Array.from(biased.auxChosen), Array.from(plain.auxChosen));
  assert.ok(differingTokens(biased.chosen, biased.auxChosen, 4) > 0.2);
});

test("differingTokens compares sets, not orders", () => {
  assert.equal(differingTokens([0, 1, 2, 3], [1, 0, 3, 2], 2), 0);
  assert.equal(differingTokens([0, 1, 2, 3], [0, 1, 2, 4], 2), 0.5);
});

test("tokenRoutes: a span of every layer, routed as the lab's router routes it (bias in the choice)", async () => {
  const { tokenRoutes } = await import("../src/lib/routed-layer.js");
  const { biasedTopKRow, softmaxRow } = await import("../src/lib/routing.js");
  const { normalGenerator } = await import("../src/lib/random.js");
  const normal = normalGenerator(8);
  const [layers, tokens, experts, topK] = [2, 30, 16, 4];
  const data = Float32Array.from({ length: layers * tokens * experts }, () => normal());
  const selectionBias = Float32Array.from({ length: layers * experts }, (_, i) => (i % 5) * 0.02);
  const routes = tokenRoutes(
    { logits: { data, layers, tokens, experts }, topK, sequenceLengths: [tokens], selectionBias },
    10,
    12,
  );
  assert.equal(routes.tokens, 12);
  const p = new Float64Array(experts);
  const scores = new Float64Array(experts);
  const chosen = new Int32Array(topK);
  for (let l = 0; l < layers; l++)
    for (let t = 0; t < 12; t++) {
      softmaxRow(data, (l * tokens + 10 + t) * experts, experts, p);
      biasedTopKRow(p, selectionBias, l * experts, experts, topK, scores, chosen);
      const at = (l * 12 + t) * topK;
      assert.deepEqual(Array.from(routes.chosen.subarray(at, at + topK)), Array.from(chosen));
      for (let i = 0; i < topK; i++)
        assert.ok(Math.abs(routes.gates[at + i] - p[chosen[i]]) < 1e-12, "gate: the unbiased p");
    }
  // a span past the end is cut to the tokens that exist
  assert.equal(
    tokenRoutes({ logits: { data, layers, tokens, experts }, topK, sequenceLengths: [tokens] }, 25, 40).tokens,
    5,
  );
});
