// Cases derived by hand from the specification, including its traps.
import { test } from "node:test";
import assert from "node:assert/strict";
import { computeLosses } from "../src/lib/losses/index.js";
import { effectiveCoefficient } from "../src/lib/losses/z-loss.js";
import {
  naiveLogSumExpFloat32,
  logSumExpRow,
  topKRow,
  gateWeights,
  softmaxRow,
  noisyLogits,
} from "../src/lib/routing.js";
import { normalGenerator } from "../src/lib/random.js";
import { cv2Population, cv2Unbiased } from "../src/lib/losses/reduce.js";
import { logitsFromNested, LabInputError } from "../src/lib/types.js";
import { assertClose } from "./helpers.js";

test("top-k ties go to the lower expert index", () => {
  const out = [0, 0];
  topKRow([0.2, 0.5, 0.5, 0.5], 4, 2, out);
  assert.deepEqual(out, [1, 2]);
  topKRow([1, 1, 1], 3, 2, out);
  assert.deepEqual(out, [0, 1]);
  const three = [0, 0, 0];
  topKRow([0.1, 0.3, 0.2, 0.3, 0.9], 5, 3, three);
  assert.deepEqual(three, [4, 1, 3]);
});

test("the equal-logits trap: lbl.switch reads 1 while every token goes to the same k experts", () => {
  const E = 8,
    k = 2,
    T = 5;
  const logits = logitsFromNested([Array.from({ length: T }, () => new Array(E).fill(0.7))]);
  const record = computeLosses(logits, k);
  assertClose(record.lbl.switch, 1, 1e-12, "switch");
  assert.deepEqual(record.load[0], [T, T, 0, 0, 0, 0, 0, 0]);
  assertClose(record.max_vio.global, E / k - 1, 1e-12, "max_vio");
});

test("total collapse onto k experts with confident logits: lbl.switch → E/k", () => {
  // p ≈ 1/k on experts 0..k−1; f = 1/k there: E Σ f P = E · k · (1/k)(1/k) = E/k
  const E = 16,
    k = 4;
  const row = Array.from({ length: E }, (_, e) => (e < k ? 30 : 0));
  const record = computeLosses(logitsFromNested([[row, row, row]]), k);
  assertClose(record.lbl.switch, E / k, 1e-9, "switch");
  assertClose(record.lbl.hf, E, 1e-9, "hf");
});

test("logits of 1e4 give finite, correct results", () => {
  const row = [1e4, 1e4 - 1, 0, -1e4];
  const record = computeLosses(logitsFromNested([[row]]), 2);
  const lse = 1e4 + Math.log(1 + Math.exp(-1));
  assertClose(record.z_loss.st_moe, lse * lse, 1e-12, "z");
  assert.ok(Number.isFinite(record.lbl.switch));
  assert.deepEqual(record.load, [[1, 1, 0, 0]]);
});

test("the naive float32 logsumexp of MegaBlocks' OLMoE branch overflows past ~88.7; the stable one stays exact", () => {
  const row = Float32Array.from([100, 99.5, 98, 97, 90, 80, 70, 60]);
  assert.equal(naiveLogSumExpFloat32(row, 0, 8), Infinity);
  assert.ok(Number.isFinite(naiveLogSumExpFloat32(Float32Array.from([88, 0]), 0, 2)));
  const exact =
    100 +
    Math.log(
      1 + Math.exp(-0.5) + Math.exp(-2) + Math.exp(-3) + Math.exp(-10) + Math.exp(-20) + Math.exp(-30) + Math.exp(-40),
    );
  assertClose(logSumExpRow(row, 0, 8), exact, 1e-14);
  const record = computeLosses(logitsFromNested([[Array.from(row)]]), 2);
  assertClose(record.z_loss.st_moe, exact * exact, 1e-12);
});

test("OLMoE's β = 0.001 with k = 8 acts as 1.25e-4 under its ÷k normalisation", () => {
  assertClose(effectiveCoefficient(0.001, 8, "olmoe"), 1.25e-4, 1e-12);
  assert.equal(effectiveCoefficient(0.001, 8, "st_moe"), 0.001);
});

test("CV²: population vs unbiased variance", () => {
  // values 1, 2, 3: mean 2, population variance 2/3, unbiased 1
  assertClose(cv2Population([1, 2, 3]), 2 / 3 / 4, 1e-15);
  assertClose(cv2Unbiased([1, 2, 3]), 1 / 4, 1e-15);
  // load form: (E/(T·k)²) Σ c² − 1
  const load = [2, 3, 2, 5],
    T = 6,
    k = 2;
  assertClose(cv2Population(load), (4 / (T * k) ** 2) * load.reduce((a, c) => a + c * c, 0) - 1, 1e-12);
});

test("gates: OLMoE keeps p (sum < 1), Mixtral renormalises (sum 1; weight 1 when k = 1)", () => {
  const p = new Float64Array(4);
  softmaxRow([2, 1, 0, -1], 0, 4, p);
  const olmoe = gateWeights(p, [0, 1], "olmoe");
  const mixtral = gateWeights(p, [0, 1], "mixtral");
  assertClose(olmoe[0], p[0], 1e-15);
  assert.ok(olmoe[0] + olmoe[1] < 1);
  assertClose(mixtral[0] + mixtral[1], 1, 1e-15);
  // Mixtral's renormalised gates are a softmax over the chosen logits
  assertClose(mixtral[0], Math.exp(2) / (Math.exp(2) + Math.exp(1)), 1e-12);
  assert.deepEqual(gateWeights(p, [0], "mixtral"), [1]);
});

test("noisy top-k: reproducible from its seed, zero noise logits of −∞ change nothing", () => {
  const clean = Float64Array.from([1, 2, 3, 4]);
  const a = noisyLogits(clean, [0, 0, 0, 0], normalGenerator(7));
  const b = noisyLogits(clean, [0, 0, 0, 0], normalGenerator(7));
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, clean);
  const quiet = noisyLogits(clean, [-1e3, -1e3, -1e3, -1e3], normalGenerator(7));
  quiet.forEach((v, i) => assertClose(v, clean[i], 1e-12));
});

test("bad layouts are refused with a sentence", () => {
  const logits = logitsFromNested([
    [
      [0, 1],
      [1, 0],
      [0, 0],
    ],
  ]);
  assert.throws(
    () => computeLosses(logits, 3),
    (e: Error) => e instanceof LabInputError && /top_k must be/.test(e.message),
  );
  assert.throws(() => computeLosses(logits, 0), LabInputError);
  assert.throws(() => computeLosses(logits, 1, [1, 1]), /sum to 2, but the logits hold 3/);
  assert.throws(() => computeLosses(logits, 1, [3, 0]), /length 0/);
  assert.throws(() => computeLosses(logits, 1, [3], 0), /micro_batch_sequences/);
  const withNaN = logitsFromNested([
    [
      [0, NaN],
      [1, 0],
    ],
  ]);
  assert.throws(() => computeLosses(withNaN, 1), /layer 0, token 0, expert 1 is NaN/);
});

test("the engine's exp matches Math.exp to 1e-12 relative on x ≤ 0", async () => {
  const { expNonPositive } = await import("../src/lib/fast-exp.js");
  let worst = 0;
  for (let i = 0; i <= 200_000; i++) {
    const x = -(i / 200_000) * 700;
    worst = Math.max(worst, Math.abs(expNonPositive(x) / Math.exp(x) - 1));
  }
  assert.ok(worst < 1e-12, `worst relative error ${worst}`);
  assert.equal(expNonPositive(0), 1);
  assert.equal(expNonPositive(-1e-300), 1);
  assert.equal(expNonPositive(-800), 0);
});
