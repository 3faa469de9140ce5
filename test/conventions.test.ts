// Routing conventions against small cases worked by hand from the upstream
// code (DeepSeek-V3's Gate.forward, Megatron-LM's topk_routing_with_score_function
// and group_limited_topk), and properties that any convention must keep.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  ConventionRouter,
  probabilitiesWarning,
  validateBias,
  validateConvention,
  type RoutingConvention,
} from "../src/lib/conventions.js";
import { routingPresets } from "../src/lib/presets.js";
import { assertClose } from "./helpers.js";

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
const route = (c: RoutingConvention, row: number[], bias?: number[]) => {
  const router = new ConventionRouter(c, row.length);
  const lse = router.route(row, 0, bias);
  return {
    chosen: Array.from(router.chosen),
    gates: Array.from(router.gates),
    balance: Array.from(router.balanceScores),
    lse,
  };
};
const deepseekSmall: RoutingConvention = {
  score: "sigmoid",
  topK: 2,
  preSoftmax: true,
  normalizeGates: true,
  scalingFactor: 2.5,
  groups: { count: 4, keep: 2, rule: "deepseek-v3" },
};
const row = [2, -1, 0.5, 0.4, -3, 3, 0.1, 0.2];

test("DeepSeek-V3 without a bias: groups scored by their largest sigmoid, 2 of 4 kept, top-2, gates renormalised × 2.5", () => {
  // group maxima: σ(2), σ(0.5), σ(3), σ(0.2) → groups 2 and 0 kept → experts 5 and 0
  const r = route(deepseekSmall, row);
  assert.deepEqual(r.chosen, [5, 0]);
  const total = sigmoid(3) + sigmoid(2);
  assertClose(r.gates[0], (2.5 * sigmoid(3)) / total, 1e-14);
  assertClose(r.gates[1], (2.5 * sigmoid(2)) / total, 1e-14);
});

test("DeepSeek-V3 with a bias: groups scored by the sum of their top-2 biased scores; gates stay the unbiased sigmoid", () => {
  const bias = [0, 0, 0, 0, 0, -2, 0, 0.9];
  // biased group sums: g0 σ(2)+σ(−1) = 1.150, g1 σ(.5)+σ(.4) = 1.221, g2 σ(−3)+σ(3)−2 = −1.000, g3 σ(.1)+σ(.2)+.9 = 1.975
  // → groups 3 and 1 kept; top-2 of s+b inside them: expert 7 (1.450), expert 2 (0.622)
  const r = route(deepseekSmall, row, bias);
  assert.deepEqual(r.chosen, [7, 2]);
  const total = sigmoid(0.2) + sigmoid(0.5);
  assertClose(r.gates[0], (2.5 * sigmoid(0.2)) / total, 1e-14);
  assertClose(r.gates[1], (2.5 * sigmoid(0.5)) / total, 1e-14);
  // the aux loss's scores: the per-token normalised sigmoid, no bias
  const sum = row.reduce((a, x) => a + sigmoid(x), 0);
  r.balance.forEach((q, e) => assertClose(q, sigmoid(row[e]) / sum, 1e-12));
});

test("Megatron-LM's group rule sums each group's top-(k/kept) scores, and pre_softmax=False scores groups on the logits", () => {
  // top-4 from 2 of 4 groups: each group scored by its top-2 sum
  const megatron: RoutingConvention = {
    score: "softmax",
    topK: 4,
    preSoftmax: false,
    normalizeGates: false,
    scalingFactor: 1,
    groups: { count: 4, keep: 2, rule: "megatron" },
  };
  // logit sums: g0 1, g1 0.9, g2 0, g3 0.3 → groups 0 and 1 → experts 0, 2, 3, 1
  const r = route(megatron, row);
  assert.deepEqual(r.chosen, [0, 2, 3, 1]);
  // softmax over the chosen logits
  const z = [2, 0.5, 0.4, -1].map(Math.exp),
    s = z.reduce((a, b) => a + b, 0);
  r.gates.forEach((g, i) => assertClose(g, z[i] / s, 1e-14));
  // scored by probability sums (pre_softmax) the groups change, though p is monotone in x:
  // g2 = {−3, 3} sums to 0.60 of the probability and g0 to 0.23, g1 only to 0.09
  const pre = route({ ...megatron, preSoftmax: true }, row);
  assert.deepEqual(pre.chosen, [5, 0, 1, 4]);
});

test("softmax conventions: OLMoE keeps p, Mixtral/Qwen3 renormalise, gpt-oss (top-k then softmax) equals renormalising", () => {
  const p = row.map(Math.exp);
  const total = p.reduce((a, b) => a + b, 0);
  const olmoe = route(routingPresets.olmoe.convention(2), row);
  assert.deepEqual(olmoe.chosen, [5, 0]);
  assertClose(olmoe.gates[0], p[5] / total, 1e-14);
  const mixtral = route(routingPresets.mixtral.convention(2), row);
  const gptOss = route(routingPresets["gpt-oss"].convention(2), row);
  assertClose(mixtral.gates[0], p[5] / (p[5] + p[0]), 1e-14);
  assertClose(gptOss.gates[0], mixtral.gates[0], 1e-14);
  assertClose(olmoe.lse, Math.log(total), 1e-14);
});

test("sqrt(softplus) neither overflows nor underflows to zero", () => {
  const c: RoutingConvention = {
    score: "sqrtsoftplus",
    topK: 1,
    preSoftmax: true,
    normalizeGates: false,
    scalingFactor: 1,
  };
  const r = new ConventionRouter(c, 3);
  r.route([-50, 100, 0], 0);
  assertClose(r.scores[0], Math.sqrt(Math.exp(-50)), 1e-12);
  assertClose(r.scores[1], 10, 1e-15);
  assertClose(r.scores[2], Math.sqrt(Math.log(2)), 1e-15);
  assert.deepEqual(Array.from(r.chosen), [1]);
});

test("property: with groups, no expert outside the kept groups is ever chosen, and gates sum to the scaling factor when normalised", () => {
  fc.assert(
    fc.property(
      fc.constantFrom(2, 4, 8),
      fc.integer({ min: 1, max: 4 }),
      fc.array(fc.double({ min: -6, max: 6, noNaN: true }), { minLength: 16, maxLength: 16 }),
      fc.array(fc.double({ min: -1, max: 1, noNaN: true }), { minLength: 16, maxLength: 16 }),
      fc.constantFrom("max", "top2-sum", "deepseek-v3"),
      (count, keepWish, logits, bias, rule) => {
        const keep = Math.min(keepWish, count);
        const size = 16 / count;
        const topK = Math.min(keep * size, 3);
        const c: RoutingConvention = {
          score: "sigmoid",
          topK,
          preSoftmax: true,
          normalizeGates: true,
          scalingFactor: 1.5,
          groups: { count, keep, rule: rule as "max" },
        };
        const router = new ConventionRouter(c, 16);
        router.route(logits, 0, bias);
        const groupsUsed = new Set(Array.from(router.chosen, (e) => Math.floor(e / size)));
        assert.ok(groupsUsed.size <= keep);
        assert.equal(new Set(router.chosen).size, topK, "distinct experts");
        assertClose(
          router.gates.reduce((a, b) => a + b, 0),
          1.5,
          1e-12,
        );
      },
    ),
  );
});

test("property: without groups, a sigmoid router's choice is the top-k of s + b", () => {
  fc.assert(
    fc.property(
      fc.array(fc.double({ min: -6, max: 6, noNaN: true }), { minLength: 12, maxLength: 12 }),
      fc.array(fc.double({ min: -0.5, max: 0.5, noNaN: true }), { minLength: 12, maxLength: 12 }),
      fc.integer({ min: 1, max: 12 }),
      (logits, bias, topK) => {
        const router = new ConventionRouter(
          { score: "sigmoid", topK, preSoftmax: true, normalizeGates: true, scalingFactor: 1 },
          12,
        );
        router.route(logits, 0, bias);
        // the router's own sigmoid (two formulas can differ in the last bit, and break a tie) plus the bias
        router.scores.forEach((v, e) => assertClose(v, sigmoid(logits[e]), 1e-15, `σ at ${e}`));
        const order = logits
          .map((_, e) => [router.scores[e] + bias[e], e] as const)
          .sort((a, b) => b[0] - a[0] || a[1] - b[1]);
        assert.deepEqual(
          Array.from(router.chosen),
          order.slice(0, topK).map(([, e]) => e),
        );
      },
    ),
  );
});

test("bad conventions and biases end in one sentence each", () => {
  const base: RoutingConvention = {
    score: "sigmoid",
    topK: 8,
    preSoftmax: true,
    normalizeGates: true,
    scalingFactor: 1,
  };
  assert.throws(
    () => validateConvention({ ...base, groups: { count: 3, keep: 1, rule: "max" } }, 64),
    /3 groups do not divide 64 experts/,
  );
  assert.throws(
    () => validateConvention({ ...base, groups: { count: 8, keep: 9, rule: "max" } }, 64),
    /between 1 and the 8 groups; got 9/,
  );
  assert.throws(
    () => validateConvention({ ...base, groups: { count: 16, keep: 1, rule: "max" } }, 64),
    /top-8 cannot be chosen from 1 kept group of 4 experts/,
  );
  assert.throws(
    () => validateConvention({ ...base, groups: { count: 8, keep: 3, rule: "megatron" } }, 64),
    /not a multiple of 3/,
  );
  assert.throws(
    () => validateConvention({ ...base, scalingFactor: 0 }, 64),
    /scaling factor must be a finite number > 0/,
  );
  assert.throws(() => validateBias([0, 1, 2], 2, 4), /has 3 values; expected 4 .* or 8/);
  assert.throws(() => validateBias([0, 1, Number.NaN, 0], 1, 4), /not finite at expert 2: NaN/);
  const probabilities = Float64Array.from({ length: 40 }, (_, i) => (i % 4 === 0 ? 0.7 : 0.1));
  assert.match(probabilitiesWarning(probabilities, 4, "sigmoid") ?? "", /look like probabilities/);
  assert.equal(probabilitiesWarning(probabilities, 4, "softmax"), null);
  assert.equal(probabilitiesWarning([0.3, -2, 1.5, 0.1], 4, "sigmoid"), null);
});

test("the summary under a convention: OLMoE's convention equals the fast path; a sigmoid router's loads are its dispatched route", async () => {
  const { summarize } = await import("../src/lib/summary.js");
  const { lossRecord } = await import("../src/lib/losses/index.js");
  const layers = 2,
    tokens = 30,
    experts = 8;
  const data = Float64Array.from(
    { length: layers * tokens * experts },
    (_, i) => Math.sin(i * 0.37) * 2 + (i % experts === 3 ? 0.8 : 0),
  );
  const logits = { data, layers, tokens, experts };
  const lengths = [10, 20];
  const fast = summarize(logits, 2, lengths);
  const slow = summarize(logits, 2, lengths, { convention: routingPresets.olmoe.convention(2) });
  assert.deepEqual(Array.from(slow.load), Array.from(fast.load));
  slow.probSum.forEach((v, i) => assertClose(v, fast.probSum[i], 1e-12));
  slow.logSumExpSquareSum.forEach((v, i) => assertClose(v, fast.logSumExpSquareSum[i], 1e-12));

  // DeepSeek-style: sigmoid, 4 groups of 2, 2 kept, top-2, a bias per layer
  const bias = Float64Array.from({ length: layers * experts }, (_, i) => ((i * 7) % 5) * 0.1 - 0.2);
  const convention: RoutingConvention = {
    score: "sigmoid",
    topK: 2,
    preSoftmax: true,
    normalizeGates: true,
    scalingFactor: 2.5,
    groups: { count: 4, keep: 2, rule: "deepseek-v3" },
  };
  const summary = summarize(logits, 2, lengths, { convention, selectionBias: bias });
  const router = new ConventionRouter(convention, experts);
  const load = new Float64Array(layers * experts);
  for (let l = 0; l < layers; l++)
    for (let t = 0; t < tokens; t++) {
      router.route(data, (l * tokens + t) * experts, bias, l * experts);
      for (const e of router.chosen) load[l * experts + e]++;
    }
  const record = lossRecord(summary);
  assert.deepEqual(record.load.flat(), Array.from(load));
  // balance scores sum to 1 per token, so P sums to 1 and lbl.switch reads 1 at balance as before
  const perLayer = summary.probSum.slice(0, 2 * experts).reduce((a, b) => a + b, 0);
  assertClose(perLayer, tokens, 1e-12);
  assert.throws(() => summarize(logits, 3, lengths, { convention }), /chooses top-2, the batch top-3/);
});
