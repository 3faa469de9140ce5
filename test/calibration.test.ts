import { test } from "node:test";
import assert from "node:assert/strict";
import {
  calibrationTexts,
  mergeCalibration,
  summarizeCalibration,
  swapsOf,
  type CalibrationResult,
} from "../src/lib/model/calibration.js";

/** A sweep of 1 layer, top-2, 2 alternatives: swaps drop 1, drop 2, add 3, add 4; Δ per token in that order. */
function sweep(deltas: number[][]): CalibrationResult {
  return {
    options: { topK: 2, alternatives: 2, tokens: deltas.length },
    layers: 1,
    swaps: swapsOf(2, 2),
    delta: Float64Array.from(deltas.flat()),
    passes: deltas.length,
    tokenPositions: 0,
  };
}

test("summarizeCalibration on a hand-made sweep: means, order agreement, left-out wins, standard errors", () => {
  const result = sweep([
    // token 0: dropping rank 1 hurts more than rank 2 (agree); rank 3 helps more than rank 4 (agree); rank 3 gains (> 0)
    [-0.4, -0.1, 0.05, -0.2],
    // token 1: dropping rank 2 hurts more (disagree); rank 4 helps more (disagree); no gain
    [-0.1, -0.3, -0.3, -0.1],
  ]);
  assert.deepEqual(
    result.swaps.map((s) => `${s.kind} ${s.rank}`),
    ["drop 1", "drop 2", "add 3", "add 4"],
  );
  const s = summarizeCalibration(result);
  const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-12, `${a} vs ${b}`);
  [-0.25, -0.2, -0.125, -0.15].forEach((m, i) => close(s.meanDelta[i], m));
  close(s.firstChoiceWorth, -0.25);
  // one pair per cell: agree in token 0, disagree in token 1
  close(s.dropOrderAgreement, 0.5);
  close(s.addOrderAgreement, 0.5);
  close(s.betterLeftOut, 0.5);
  // standard error of the mean over two cells: sd / √2 with sd = |a − b| / √2
  close(s.firstChoiceWorthSE, Math.abs(-0.4 - -0.1) / 2);
  close(s.betterLeftOutSE, 0.5);
  assert.equal(s.cells, 2);
  // a tie says nothing: the pair is skipped, the cell has no pairs
  const tied = summarizeCalibration(sweep([[-0.2, -0.2, 0.1, 0.1]]));
  assert.ok(Number.isNaN(tied.dropOrderAgreement) && Number.isNaN(tied.addOrderAgreement));
});

test("mergeCalibration puts the tokens of several texts after each other; calibrationTexts skips each text's first line", () => {
  const merged = mergeCalibration([
    sweep([[1, 2, 3, 4]]),
    sweep([
      [5, 6, 7, 8],
      [9, 10, 11, 12],
    ]),
  ]);
  assert.equal(merged.options.tokens, 3);
  assert.deepEqual(Array.from(merged.delta), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  assert.throws(() => mergeCalibration([]), /no sweep/);
  const encode = (text: string) => Array.from(text, (c) => c.charCodeAt(0));
  const { names, texts } = calibrationTexts(encode, { b: "title\nxyz", a: "licence\nhello" }, 2);
  assert.deepEqual(names, ["a", "b"]);
  assert.deepEqual(texts, [encode("hel"), encode("xyz")]);
});
