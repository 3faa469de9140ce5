// Every analytic gradient against central finite differences.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { addLossGradient, differentiableLosses, lossGradient } from "../src/lib/losses/gradients.js";
import { lossByName, lossRecord, type LossName } from "../src/lib/losses/index.js";
import { summarize } from "../src/lib/summary.js";
import type { RouterLogits } from "../src/lib/types.js";
import { arbitraryBatch, assertClose } from "./helpers.js";

/** The loss as a function of the logits, with f frozen at its value at `x` (f has no gradient). */
function valueAt(
  logits: RouterLogits,
  name: LossName,
  topK: number,
  sequenceLengths: number[],
  microBatch: number,
): number {
  return lossByName(lossRecord(summarize(logits, topK, sequenceLengths), microBatch), name);
}

for (const name of differentiableLosses) {
  test(`∂${name}/∂x matches central finite differences`, () => {
    fc.assert(
      fc.property(
        arbitraryBatch({ maxTokens: 5, maxExperts: 8, maxSequences: 4 }),
        fc.nat(),
        ({ logits, topK, sequenceLengths, microBatch }, pick) => {
          const gradient = lossGradient(logits, name, { topK, sequenceLengths, microBatchSequences: microBatch });
          const h = 1e-5;
          // Check a handful of coordinates. A nudge can flip a top-k choice only
          // if two probabilities are within ~h of each other; skip those.
          for (let probe = 0; probe < 6; probe++) {
            const i = (pick + probe * 7919) % logits.data.length;
            const plus = Float64Array.from(logits.data);
            plus[i] += h;
            const minus = Float64Array.from(logits.data);
            minus[i] -= h;
            const a = summarize({ ...logits, data: plus }, topK, sequenceLengths);
            const b = summarize({ ...logits, data: minus }, topK, sequenceLengths);
            if (a.load.some((c, j) => c !== b.load[j])) continue;
            const numeric =
              (valueAt({ ...logits, data: plus }, name, topK, sequenceLengths, microBatch) -
                valueAt({ ...logits, data: minus }, name, topK, sequenceLengths, microBatch)) /
              (2 * h);
            // finite differences carry ~1e-11 of rounding: tolerance 1e-5 relative, 1e-9 absolute
            assertClose(gradient[i], numeric, 1e-5, `${name} at ${i}`, 1e-4);
          }
        },
      ),
      { numRuns: 60 },
    );
  });
}

test("the LBL gradient of one layer is (E/T) p_j (f_j − Σ f p), as the spec writes it", () => {
  const logits: RouterLogits = {
    data: Float64Array.from([0.3, -0.2, 1.1, 0.5, 0.0, -1.0, 2.0, 0.1, 0.4]),
    layers: 1,
    tokens: 3,
    experts: 3,
  };
  const gradient = lossGradient(logits, "lbl.switch", { topK: 1 });
  const summary = summarize(logits, 1);
  const f = Array.from(summary.load, (c) => c / 3);
  for (let t = 0; t < 3; t++) {
    const row = Array.from(logits.data.slice(t * 3, t * 3 + 3));
    const z = row.map(Math.exp),
      s = z.reduce((a, b) => a + b, 0),
      p = z.map((v) => v / s);
    const fp = f.reduce((a, fe, e) => a + fe * p[e], 0);
    for (let j = 0; j < 3; j++) assertClose(gradient[t * 3 + j], (3 / 3) * p[j] * (f[j] - fp), 1e-12);
  }
});

test("addLossGradient adds weight × lossGradient into a given array, bit for bit, and refuses a wrong length", () => {
  fc.assert(
    fc.property(
      arbitraryBatch({ maxTokens: 6, maxExperts: 8, maxSequences: 4 }),
      fc.double({ min: -3, max: 3, noNaN: true }),
      ({ logits, topK, sequenceLengths, microBatch }, weight) => {
        const options = { topK, sequenceLengths, microBatchSequences: microBatch };
        const start = Float64Array.from(logits.data, (_, i) => Math.sin(i)); // a sum already under way
        for (const name of differentiableLosses) {
          const g = lossGradient(logits, name, options);
          const into = Float64Array.from(start);
          addLossGradient(logits, name, options, into, weight);
          // Each logit has one term of every loss here (blocks never overlap), so the sums agree exactly.
          for (let i = 0; i < g.length; i++)
            if (!Object.is(into[i], start[i] + weight * g[i]))
              throw new Error(`${name} at ${i}: ${into[i]} against ${start[i] + weight * g[i]}`);
        }
      },
    ),
    { numRuns: 60 },
  );
  const logits: RouterLogits = { data: new Float64Array(6), layers: 1, tokens: 2, experts: 3 };
  assert.throws(
    () => addLossGradient(logits, "lbl.switch", { topK: 1 }, new Float64Array(5)),
    /the gradient's array holds 5 values; the logits 6/,
  );
});
