// Counterfactual routing, calibration and routing consistency on a shipped
// checkpoint, with onnxruntime-node: each view's numbers against the same
// quantity computed the direct way (a forced forward pass read by hand).
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import * as ort from "onnxruntime-node";
import { olmoeMini } from "../../src/lib/model/olmoe-mini.js";
import { overrideShapeOf, ownRoute } from "../../src/lib/model/route-overrides.js";
import { sessionForward } from "../../src/lib/model/session-forward.js";
import { chosenRoute, forceOneExpert, rankedExperts, replacementExpert } from "../../src/lib/model/counterfactual.js";
import { calibrationSweep, summarizeCalibration } from "../../src/lib/model/calibration.js";
import { consistencySweep, routingConsistency } from "../../src/lib/model/consistency.js";
import { maxAbsDifference, nextTokenLogProbs, runModel } from "./onnx-runners.js";

const path = fileURLToPath(new URL("../../data/models/micro.onnx", import.meta.url));
const skip = existsSync(path) ? false : "micro.onnx not exported yet";
const shape = overrideShapeOf(olmoeMini);
const k = olmoeMini.topK;

async function setup() {
  const reference = JSON.parse(readFileSync(path.replace(".onnx", ".reference.json"), "utf8"));
  const ids: number[] = reference.input_ids[0].slice(0, 24);
  const session = await ort.InferenceSession.create(path);
  const forward = sessionForward(ort, session, shape);
  return { ids, forward, plain: await forward([ids]) };
}

test("forceOneExpert: Δ log p is what two forward passes read by hand give", { skip }, async () => {
  const { ids, forward, plain } = await setup();
  const [layer, token, slot] = [1, 10, 0];
  const pick = replacementExpert({ kind: "next-best" }, plain, k, layer, token);
  assert.ok("expert" in pick);
  const ranked = rankedExperts(plain, layer, token);
  assert.equal(pick.expert, ranked[k], "the next-best is the router's (k+1)-th choice");
  const result = await forceOneExpert(forward, ids, plain, k, layer, token, slot, pick.expert);
  assert.equal(result.expertOut, ranked[0]);
  // by hand: a route with the one slot forced, through the test's own runner
  const route = ownRoute(olmoeMini.layers, 1, ids.length, k);
  route.data[(layer * ids.length + token) * k + slot] = pick.expert;
  const [before, after] = await Promise.all([
    runModel("onnxruntime-node", path, [ids]),
    runModel("onnxruntime-node", path, [ids], { forcedExperts: route }),
  ]);
  const lpBefore = nextTokenLogProbs(before.logits, before.logitsDims, [ids]);
  const lpAfter = nextTokenLogProbs(after.logits, after.logitsDims, [ids]);
  assert.ok(Math.abs(result.deltaLogProb - (lpAfter[token] - lpBefore[token])) < 1e-5);
  assert.ok(Math.abs(result.deltaLogProb) > 1e-4, "replacing the first choice moves the prediction");
  // positions before the token cannot see the change (causal)
  assert.ok(maxAbsDifference(lpAfter.slice(0, token), lpBefore.slice(0, token)) < 1e-6);
  assert.ok(result.gateIn < result.gateOut, "the left-out expert has the smaller router probability");
  assert.equal(result.before.top.length, 5);
});

test(
  "replacementExpert: each rule gives an expert outside the route; bad choices get a sentence",
  { skip },
  async () => {
    const { plain } = await setup();
    const route = Array.from(rankedExperts(plain, 0, 3).subarray(0, k));
    for (const rule of [{ kind: "least-loaded" }, { kind: "random", seed: 4 }, { kind: "next-best" }] as const) {
      const pick = replacementExpert(rule, plain, k, 0, 3);
      assert.ok("expert" in pick && !route.includes(pick.expert), rule.kind);
    }
    const again = replacementExpert({ kind: "random", seed: 4 }, plain, k, 0, 3);
    assert.deepEqual(
      again,
      replacementExpert({ kind: "random", seed: 4 }, plain, k, 0, 3),
      "a seed gives the same draw",
    );
    const taken = replacementExpert({ kind: "expert", expert: route[2] }, plain, k, 0, 3);
    assert.ok("problem" in taken && /already one of this token's 8 experts \(its choice no\. 3\)/.test(taken.problem));
    const out = replacementExpert({ kind: "expert", expert: 64 }, plain, k, 0, 3);
    assert.ok("problem" in out && /out of range/.test(out.problem));
  },
);

test(
  "calibration sweep: each Δ equals the full sequence forced the same way (the model is causal)",
  { skip },
  async () => {
    const { ids, forward, plain } = await setup();
    const result = await calibrationSweep(forward, ids, plain, { topK: k, alternatives: 3, tokens: 4 });
    assert.equal(result.delta.length, 4 * olmoeMini.layers * (k + 3));
    assert.equal(result.passes, 4);
    const summary = summarizeCalibration(result);
    assert.equal(summary.meanDelta.length, k + 3);
    assert.ok(summary.addOrderAgreement >= 0 && summary.addOrderAgreement <= 1);
    // one swap by hand: token 2, layer 2, drop rank 1 (slot 0 → the (k+1)-th expert), on the whole sequence
    const [t, l] = [2, 2];
    const route = ownRoute(olmoeMini.layers, 1, ids.length, k);
    route.data[(l * ids.length + t) * k + 0] = rankedExperts(plain, l, t)[k];
    const forced = await forward([ids], { forcedExperts: route });
    const byHand = forced.next.logProbs[t] - plain.next.logProbs[t];
    const swept = result.delta[(t * olmoeMini.layers + l) * result.swaps.length + 0];
    assert.ok(Math.abs(swept - byHand) < 1e-4, `${swept} vs ${byHand}`);
  },
);

test("routing consistency: identical runs flip nothing; replay removes the route's mismatch", { skip }, async () => {
  const { ids, forward } = await setup();
  const same = await routingConsistency(forward, forward, [ids], { kind: "noise", epsilon: 0 }, k, shape.width);
  assert.deepEqual(same.free.flipRateByLayer, [0, 0, 0]);
  assert.equal(same.free.maxLogProbMismatch, 0);
  const noisy = await routingConsistency(forward, forward, [ids], { kind: "noise", epsilon: 0.05 }, k, shape.width);
  assert.ok(noisy.free.anyLayerFlipped > 0, "a perturbation of 0.05 flips some route");
  assert.ok(noisy.free.anyLayerFlipped >= Math.max(...noisy.free.flipRateByLayer), "any layer ≥ each layer");
  assert.deepEqual(noisy.replayed.flipRateByLayer, [0, 0, 0], "replay: no routing mismatch");
  assert.ok(noisy.replayed.meanLogProbMismatch < noisy.free.meanLogProbMismatch, "replay shrinks the mismatch");
  // the first run's route is what chosenRoute reads from its logits
  assert.equal(chosenRoute(await forward([ids]), k).data.length, olmoeMini.layers * ids.length * k);
});

test(
  "consistency sweep: no flip at ε = 0, flips at large ε, none with replay, and the any-layer share bounds each layer's",
  { skip },
  async () => {
    const { ids, forward } = await setup();
    const points = await consistencySweep(forward, [ids], [0, 1e-4, 1e-2, 1e-1], k, shape.width);
    assert.deepEqual(points[0].free.flipRateByLayer, [0, 0, 0]);
    assert.equal(points[0].free.maxLogProbMismatch, 0);
    assert.ok(points[3].free.anyLayerFlipped > points[0].free.anyLayerFlipped, "a perturbation of 0.1 flips routes");
    for (const p of points) {
      assert.deepEqual(p.replayed.flipRateByLayer, [0, 0, 0]);
      assert.ok(p.free.anyLayerFlipped >= Math.max(...p.free.flipRateByLayer));
    }
    // the sweep's point at 1e-2 is what routingConsistency gives for that ε
    const single = await routingConsistency(forward, forward, [ids], { kind: "noise", epsilon: 1e-2 }, k, shape.width);
    assert.deepEqual(points[2].free, single.free);
  },
);
