import { test } from "node:test";
import assert from "node:assert/strict";
import { compareRuns } from "../src/lib/model/consistency.js";
import type { ForwardOutput } from "../src/lib/model/counterfactual.js";

/** A forward output with only what compareRuns reads: dims and next-token log-probs. */
function run(logProbs: number[], layers: number): ForwardOutput {
  const n = logProbs.length;
  return {
    router: new Float32Array(layers * n * 4),
    dims: [layers, 1, n, 4],
    bias: null,
    next: {
      logProbs: Float32Array.from(logProbs),
      topIds: new Int32Array(0),
      topLogProbs: new Float32Array(0),
      top: 0,
    },
  };
}

test("compareRuns: flip rates per layer and over layers, k3-KL and the extreme share on hand-made runs", () => {
  // 2 layers, 4 tokens, k = 2; token 1 flips in layer 0, token 3 in layer 1, token 2 only reorders (no flip)
  const a = Int32Array.from([0, 1, 2, 3, 4, 5, 6, 7, /* layer 1 */ 0, 1, 2, 3, 4, 5, 6, 7]);
  const b = Int32Array.from([0, 1, 2, 9, 5, 4, 6, 7, /* layer 1 */ 0, 1, 2, 3, 4, 5, 6, 8]);
  const pa = [-1, -2, -0.5, NaN];
  const pb = [-1, -2 + Math.log(3), -0.5 - 0.1, NaN];
  const result = compareRuns(a, b, run(pa, 2), run(pb, 2), 2);
  assert.deepEqual(result.flipRateByLayer, [0.25, 0.25]);
  assert.equal(result.anyLayerFlipped, 0.5);
  const deltas = [0, Math.log(3), -0.1];
  const k3 = deltas.reduce((s, d) => s + Math.exp(d) - 1 - d, 0) / 3;
  assert.ok(Math.abs(result.k3KL - k3) < 1e-6);
  assert.ok(Math.abs(result.meanLogProbMismatch - (Math.log(3) + 0.1) / 3) < 1e-6);
  assert.ok(Math.abs(result.maxLogProbMismatch - Math.log(3)) < 1e-6);
  assert.equal(result.extremeShare, 1 / 3, "only the ×3 token is past ln 2");
  const same = compareRuns(a, a, run(pa, 2), run(pa, 2), 2);
  assert.deepEqual([same.anyLayerFlipped, same.k3KL, same.extremeShare, same.maxLogProbMismatch], [0, 0, 0, 0]);
});
