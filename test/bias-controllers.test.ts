// Quantile balancing and the bias controllers: exact loads, hand-worked
// updates, the sign rule's limit cycle, and the report's definitions.
import { test } from "node:test";
import assert from "node:assert/strict";
import { midpointOfOrder, solveQuantileBias } from "../src/lib/quantile-balancing.js";
import {
  controllerReport,
  quantileSolutions,
  runControllers,
  scoreScale,
  scoreStreamOfLogits,
  syntheticScoreStream,
  type ControllerTrace,
  type ScoreStream,
} from "../src/lib/bias-controllers.js";
import { normalGenerator } from "../src/lib/random.js";
import { topKRow } from "../src/lib/routing.js";

/** Tie-free scores (continuous draws) with a skew between experts. */
function skewedScores(tokens: number, experts: number, spread: number, seed: number): Float64Array {
  const normal = normalGenerator(seed);
  const preference = Array.from({ length: experts }, () => spread * normal());
  return Float64Array.from(
    { length: tokens * experts },
    (_, i) => 1 / (1 + Math.exp(-(preference[i % experts] + normal()))),
  );
}

function loads(scores: Float64Array, tokens: number, experts: number, k: number, bias: ArrayLike<number>): number[] {
  const load = new Array<number>(experts).fill(0);
  const row = new Float64Array(experts);
  const top = new Int32Array(k);
  for (let t = 0; t < tokens; t++) {
    for (let e = 0; e < experts; e++) row[e] = scores[t * experts + e] + bias[e];
    topKRow(row, experts, k, top);
    for (const e of top) load[e]++;
  }
  return load;
}

test("midpointOfOrder is halfway between the n-th and (n+1)-th smallest", () => {
  const normal = normalGenerator(3);
  for (let trial = 0; trial < 50; trial++) {
    const values = Float64Array.from({ length: 5 + trial }, () => normal());
    const sorted = Array.from(values).sort((a, b) => a - b);
    const n = 1 + (trial % (values.length - 1));
    assert.equal(midpointOfOrder(values.slice(), n), 0.5 * (sorted[n - 1] + sorted[n]));
  }
});

test("quantile balancing on tie-free batches with T·k divisible by E gives every expert exactly T·k/E", () => {
  const cases: [number, number, number, number][] = [
    [96, 8, 1, 1],
    [64, 16, 2, 1],
    [256, 32, 4, 2],
    [256, 64, 8, 1],
    [512, 64, 8, 2],
  ];
  for (const [T, E, k, spread] of cases)
    for (const seed of [1, 2, 3]) {
      const scores = skewedScores(T, E, spread, seed);
      const before = loads(scores, T, E, k, new Float64Array(E));
      assert.ok(Math.max(...before) > (T * k) / E, "the batch starts unbalanced");
      const solution = solveQuantileBias(scores, T, E, k);
      assert.ok(solution.exact, `T=${T} E=${E} k=${k} seed ${seed}: ${solution.iterations} sweeps`);
      // checked independently of the solver's own count
      assert.deepEqual(loads(scores, T, E, k, solution.bias), new Array(E).fill((T * k) / E));
      const mean = solution.bias.reduce((a, b) => a + b, 0) / E;
      assert.ok(Math.abs(mean) < 1e-12, "re-centred");
    }
});

test("quantile balancing refuses T·k not divisible by E and k ≥ E", () => {
  assert.throws(() => solveQuantileBias(new Float64Array(10 * 4), 10, 4, 1), /T·k divisible by E/);
  assert.throws(() => solveQuantileBias(new Float64Array(8 * 4), 8, 4, 4), /k < E/);
});

test("quantile balancing does not care about a constant added to every score of a token", () => {
  const T = 128,
    E = 16,
    k = 2;
  const scores = skewedScores(T, E, 1, 9);
  const shifted = scores.map((s, i) => s + Math.floor(i / E) * 0.25);
  const solution = solveQuantileBias(shifted, T, E, k);
  assert.ok(solution.exact);
  assert.deepEqual(loads(shifted, T, E, k, solution.bias), new Array(E).fill((T * k) / E));
});

function constantStream(
  batch: Float64Array,
  tokens: number,
  experts: number,
  topK: number,
  count: number,
): ScoreStream {
  return {
    experts,
    topK,
    tokensPerBatch: tokens,
    batches: Array.from({ length: count }, () => batch),
    switchAt: count / 2,
  };
}

test("the sign rule's limit cycle on a repeated batch has a peak-to-peak of about u", () => {
  const T = 256,
    E = 32,
    k = 4;
  const batch = skewedScores(T, E, 0.5, 4);
  for (const u of [0.005, 0.01, 0.02]) {
    const [trace] = runControllers(constantStream(batch, T, E, k, 120), [{ rule: "sign", rate: u }]);
    const { oscillation } = controllerReport(trace, 60, E, 10);
    assert.ok(oscillation > 0.5 * u && oscillation < 2 * u, `u = ${u}: peak-to-peak ${oscillation}`);
  }
});

test("one step of each rule, worked by hand", () => {
  // 4 tokens, 4 experts, k = 1: expert 0 wins every token unbiased (load 4, 0, 0, 0; mean 1).
  const batch = Float64Array.from([0.9, 0.5, 0.4, 0.3, 0.8, 0.6, 0.2, 0.1, 0.7, 0.3, 0.5, 0.4, 0.95, 0.2, 0.1, 0.6]);
  const stream = constantStream(batch, 4, 4, 1, 2);
  const u = 0.1;
  const [sign, recentred, proportional, multiplicative, frozen] = runControllers(stream, [
    { rule: "sign", rate: u },
    { rule: "sign-recentred", rate: u },
    { rule: "proportional", rate: u },
    { rule: "multiplicative", rate: u },
    { rule: "sign-frozen", rate: u, freezeAt: 1 },
  ]);
  const second = (t: ControllerTrace) => Array.from(t.bias.subarray(4, 8));
  assert.deepEqual(second(sign), [-0.1, 0.1, 0.1, 0.1]);
  // the update's mean (0.05) is removed
  assert.deepEqual(
    second(recentred).map((b) => +b.toFixed(12)),
    [-0.15, 0.05, 0.05, 0.05],
  );
  // u·(c̄ − c)/c̄: (1 − 4)/1 = −3, (1 − 0)/1 = 1
  assert.deepEqual(
    second(proportional).map((b) => +b.toFixed(12)),
    [-0.3, 0.1, 0.1, 0.1],
  );
  assert.deepEqual(second(multiplicative), [-0.1, 0.1, 0.1, 0.1]);
  assert.deepEqual(second(frozen), [0, 0, 0, 0]);
  assert.equal(sign.maxVio[0], 3);
  // second batch, additive: 0.9−0.1 = 0.8 vs 0.5+0.1 = 0.6 → expert 0 still wins token 0; token 3: 0.85 vs 0.7 → 0
  // multiplicative: 0.9·0.9 = 0.81 vs 0.5·1.1 = 0.55 → the same choices here
  assert.equal(multiplicative.maxVio[1], sign.maxVio[1]);
});

test("re-centring never changes the route, γ → 0 holds the bias, same-batch quantile balancing is exact and non-causal", () => {
  const stream = syntheticScoreStream({
    experts: 16,
    topK: 2,
    tokensPerBatch: 128,
    batches: 40,
    switchAt: 20,
    score: "sigmoid",
    seed: 5,
  });
  const u = 0.02;
  const [sign, recentred, frozen, same, causalQuantile] = runControllers(stream, [
    { rule: "sign", rate: u },
    { rule: "sign-recentred", rate: u },
    { rule: "sign-frozen", rate: u, freezeAt: 30 },
    { rule: "quantile-same-batch", rate: 0 },
    { rule: "quantile", rate: 0 },
  ]);
  assert.deepEqual(
    Array.from(recentred.maxVio),
    Array.from(sign.maxVio),
    "a common shift of every bias selects the same experts",
  );
  for (let step = 0; step < 40; step++) {
    let mean = 0;
    for (let e = 0; e < 16; e++) mean += recentred.bias[step * 16 + e] / 16;
    assert.ok(Math.abs(mean) < 1e-12, "re-centred biases keep mean 0");
  }
  for (let step = 31; step < 40; step++)
    assert.deepEqual(
      Array.from(frozen.bias.subarray(step * 16, step * 16 + 16)),
      Array.from(frozen.bias.subarray(30 * 16, 31 * 16)),
    );
  assert.deepEqual(Array.from(same.maxVio), new Array(40).fill(0));
  assert.equal(same.causal, false);
  assert.equal(causalQuantile.causal, true);
  // the causal variant routes batch s with batch s−1's exact bias: not exact
  assert.ok(Math.max(...causalQuantile.maxVio.subarray(1)) > 0);
});

test("the quantile solutions can be shared across calls, and must match the stream", () => {
  const stream = syntheticScoreStream({
    experts: 8,
    topK: 2,
    tokensPerBatch: 64,
    batches: 6,
    switchAt: 3,
    score: "softmax",
  });
  const solved = quantileSolutions(stream);
  const [a] = runControllers(stream, [{ rule: "quantile-ema", rate: 0, ema: 0.5 }], solved);
  const [b] = runControllers(stream, [{ rule: "quantile-ema", rate: 0, ema: 0.5 }]);
  assert.deepEqual(Array.from(a.maxVio), Array.from(b.maxVio));
  // EMA: the bias for batch 2 is ½·(solution 0) + ½·(solution 1)
  for (let e = 0; e < 8; e++) assert.ok(Math.abs(a.bias[2 * 8 + e] - 0.5 * (solved[0][e] + solved[1][e])) < 1e-15);
  assert.throws(
    () => runControllers(stream, [{ rule: "quantile", rate: 0 }], solved.slice(1)),
    /5 quantile solutions for 6 batches/,
  );
});

test("the report reads overshoot, settling and oscillation as defined", () => {
  // One expert (E = 1 keeps the arithmetic visible), 10 batches before the switch, 30 after.
  const steps = 40;
  const maxVio = new Float64Array(steps).fill(0.2);
  for (let i = 10; i < 15; i++) maxVio[i] = 1; // the switch: five bad batches
  const bias = new Float64Array(steps);
  // bias from 0 to 1 after the switch, overshooting to 1.5 at batch 14, ending at 1 with ±0.1
  for (let i = 10; i < steps; i++) bias[i] = i < 14 ? (i - 9) * 0.25 : i === 14 ? 1.5 : 1 + (i % 2 ? 0.1 : -0.1);
  const report = controllerReport({ spec: { rule: "sign", rate: 0.1 }, maxVio, bias, causal: true }, 10, 1, 10);
  assert.ok(Math.abs(report.before - 0.2) < 1e-12);
  assert.equal(report.peak, 1);
  assert.ok(Math.abs(report.after - 0.2) < 1e-12);
  // the 5-batch average first stays ≤ 0.2 + 0.08 from batch 19 (batches 15–19 all 0.2): 9 batches after the switch
  assert.equal(report.settling, 9);
  // end 1 (mean of ±0.1), start bias[10] = 0.25, furthest past the end 0.5 → 0.5 / 0.75
  assert.ok(Math.abs(report.overshoot - 0.5 / 0.75) < 1e-12);
  assert.ok(Math.abs(report.oscillation - 0.2) < 1e-12);
  assert.throws(
    () => controllerReport({ spec: { rule: "sign", rate: 0.1 }, maxVio, bias, causal: true }, 5, 1, 10),
    /10 batches before/,
  );
});

test("a stream cut from logits: scores per batch, the partial last batch dropped, a scale", () => {
  const logits = Float64Array.from({ length: 10 * 4 }, (_, i) => (i % 4) - 1.5);
  const stream = scoreStreamOfLogits(logits, 10, 4, 1, 4, "softmax");
  assert.equal(stream.batches.length, 2);
  const row = Array.from(stream.batches[1].subarray(0, 4));
  const z = [-1.5, -0.5, 0.5, 1.5].map(Math.exp);
  const sum = z.reduce((a, b) => a + b, 0);
  row.forEach((p, e) => assert.ok(Math.abs(p - z[e] / sum) < 1e-15));
  const sig = scoreStreamOfLogits(logits, 10, 4, 1, 4, "sigmoid");
  assert.ok(Math.abs(sig.batches[0][3] - 1 / (1 + Math.exp(-1.5))) < 1e-15);
  // every token has the same four scores: the scale is their standard deviation
  const mean = row.reduce((a, b) => a + b, 0) / 4;
  const sd = Math.sqrt(row.reduce((a, p) => a + (p - mean) ** 2, 0) / 4);
  assert.ok(Math.abs(scoreScale(stream) - sd) < 1e-12);
});
