// The causality checker: it flags expert choice and passes token choice with
// a bias from earlier batches, on the same batch; same-batch quantile balancing leaks too.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  checkCausality,
  expertChoiceRouter,
  sameBatchQuantileRouter,
  tokenChoiceRouter,
} from "../src/lib/causality.js";
import { normalGenerator } from "../src/lib/random.js";

const tokens = 24,
  experts = 8;
const normal = normalGenerator(5);
const logits = Float64Array.from({ length: tokens * experts }, () => normal());

test("token choice, with or without a bias fixed before the batch, is causal", () => {
  const bias = Float64Array.from({ length: experts }, (_, e) => 0.05 * (e - 3));
  for (const router of [tokenChoiceRouter(2), tokenChoiceRouter(2, bias)]) {
    const report = checkCausality(router, logits, tokens, experts);
    assert.equal(report.causal, true);
    assert.equal(report.tried, tokens - 1);
  }
});

test("expert choice is flagged: later tokens push earlier ones out of an expert", () => {
  // capacity T·k/E = 6 of 24 tokens per expert
  const report = checkCausality(expertChoiceRouter(6), logits, tokens, experts);
  assert.equal(report.causal, false);
  assert.ok(report.leakingPositions.length > tokens / 4, `${report.leakingPositions.length} leaking positions`);
  // the last token has nothing after it: it cannot leak
  assert.ok(!report.leakingPositions.includes(tokens - 1));
});

test("expert choice gives every expert exactly its capacity, and a token any number of experts", () => {
  const sets = expertChoiceRouter(6)(logits, tokens, experts);
  const perExpert = new Array(experts).fill(0);
  for (const s of sets) for (const e of s) perExpert[e]++;
  assert.deepEqual(perExpert, new Array(experts).fill(6));
  assert.equal(
    sets.reduce((a, s) => a + s.length, 0),
    6 * experts,
  );
});

test("same-batch quantile balancing is flagged; each expert still gets exactly T·k/E", () => {
  const router = sameBatchQuantileRouter(2);
  const sets = router(logits, tokens, experts);
  const perExpert = new Array(experts).fill(0);
  for (const s of sets) for (const e of s) perExpert[e]++;
  assert.deepEqual(perExpert, new Array(experts).fill((tokens * 2) / experts));
  const report = checkCausality(router, logits, tokens, experts);
  assert.equal(report.causal, false);
  assert.ok(!report.leakingPositions.includes(tokens - 1));
});
