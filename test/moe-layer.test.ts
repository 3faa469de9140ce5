// The in-browser MoE layer: whole-layer gradients against finite differences,
// reproducibility, and the ablation's qualitative claims for a fixed seed.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  defaultLayerConfig,
  forward,
  gradients,
  initialParameters,
  makeTask,
  objective,
  sampleBatch,
  stepBuffers,
  trainRun,
  trainStep,
  type LayerConfig,
  type Strategy,
} from "../src/lib/moe-layer.js";
import { summarize } from "../src/lib/summary.js";
import { lossRecord } from "../src/lib/losses/index.js";
import { assertClose } from "./helpers.js";

const small: LayerConfig = {
  ...defaultLayerConfig,
  experts: 6,
  topK: 2,
  inputDim: 5,
  outputDim: 3,
  clusters: 3,
  microBatches: 3,
  microBatchSize: 4,
};

for (const strategy of ["none", "lbl-micro", "lbl-global", "loss-free"] as Strategy[]) {
  test(`whole-layer gradient matches finite differences (${strategy}, with z-loss)`, () => {
    const config = { ...small, strategy, alpha: 0.7, beta: 0.05 };
    const task = makeTask(config);
    const params = initialParameters(config);
    params.router.forEach((_, i) => (params.router[i] = Math.sin(i * 1.7) * 0.8)); // a router with opinions
    const batch = sampleBatch(config, task, 3);
    const chosen = forward(config, params, batch).chosen;
    const grads = gradients(config, params, batch);
    const h = 1e-6;
    let checked = 0;
    for (const [name, values, analytic] of [
      ["router", params.router, grads.router],
      ["experts", params.experts, grads.experts],
    ] as const) {
      for (let i = 0; i < values.length; i++) {
        const original = values[i];
        values[i] = original + h;
        const plusChosen = forward(config, params, batch).chosen;
        const plus = objective(config, params, batch).total;
        values[i] = original - h;
        const minusChosen = forward(config, params, batch).chosen;
        const minus = objective(config, params, batch).total;
        values[i] = original;
        // top-k has no derivative: skip the rare nudge that flips a choice
        if (plusChosen.some((e, j) => e !== chosen[j]) || minusChosen.some((e, j) => e !== chosen[j])) continue;
        assertClose(analytic[i], (plus - minus) / (2 * h), 1e-5, `${name}[${i}]`, 1e-3);
        checked++;
      }
    }
    assert.ok(checked > 100, `only ${checked} coordinates checked`);
  });
}

test("same seed, same curve; another seed, another curve", () => {
  const a = trainRun(defaultLayerConfig, 30),
    b = trainRun(defaultLayerConfig, 30),
    c = trainRun({ ...defaultLayerConfig, seed: 2 }, 30);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a[29].taskLoss, c[29].taskLoss);
});

test("a run's reused arrays give the same steps, bit for bit, as arrays made afresh for each step", () => {
  for (const strategy of ["none", "lbl-micro", "lbl-global", "loss-free"] as Strategy[]) {
    const config: LayerConfig = { ...defaultLayerConfig, strategy, beta: 0.01 };
    const task = makeTask(config);
    const fresh = initialParameters(config);
    const reused = initialParameters(config);
    const buffers = stepBuffers(config);
    for (let step = 0; step < 25; step++) {
      // A stale value left from the last step (an output or gradient summed onto it) would show here.
      assert.deepEqual(
        trainStep(config, reused, task, step, buffers),
        trainStep(config, fresh, task, step),
        `${strategy}, step ${step}`,
      );
    }
    assert.deepEqual(reused, fresh, strategy);
  }
  // Arrays made for another shape are refused, not written past their end.
  const task = makeTask(defaultLayerConfig);
  const params = initialParameters(defaultLayerConfig);
  const batch = sampleBatch(defaultLayerConfig, task, 0);
  const fewerSamples = stepBuffers({ ...defaultLayerConfig, microBatchSize: 16 });
  assert.throws(
    () => sampleBatch(defaultLayerConfig, task, 0, fewerSamples.batch),
    /inputs holds 2048 values, not 4096/,
  );
  const moreExperts = stepBuffers({ ...defaultLayerConfig, experts: 16 });
  assert.throws(
    () => forward(defaultLayerConfig, params, batch, moreExperts.forward),
    /logits holds 4096 values, not 2048/,
  );
  const f = forward(defaultLayerConfig, params, batch);
  const otherTopK = stepBuffers({ ...defaultLayerConfig, topK: 3 });
  assert.throws(
    () => forward(defaultLayerConfig, params, batch, otherTopK.forward),
    /chosen holds 768 values, not 512/,
  );
  const widerInputs = stepBuffers({ ...defaultLayerConfig, inputDim: 20 });
  assert.throws(
    () => gradients(defaultLayerConfig, params, batch, f, undefined, widerInputs.gradients),
    /the gradient arrays were made for another shape: experts holds 1280 values, not 1024/,
  );
});

test("fixed seed: without balancing the final MaxVio exceeds every balanced strategy's", () => {
  const final = (strategy: Strategy) => {
    const run = trainRun({ ...defaultLayerConfig, strategy }, 400);
    return run.slice(-40).reduce((s, m) => s + m.maxVio, 0) / 40;
  };
  const none = final("none");
  for (const strategy of ["lbl-micro", "lbl-global", "loss-free"] as Strategy[])
    assert.ok(none > final(strategy), `${strategy}`);
});

test("micro-batch LBL forces balance inside single-cluster micro-batches; global LBL leaves it specialised", () => {
  const micro = trainRun({ ...defaultLayerConfig, strategy: "lbl-micro" }, 400).slice(-40);
  const global = trainRun({ ...defaultLayerConfig, strategy: "lbl-global" }, 400).slice(-40);
  const mean = (run: typeof micro, key: "maxVioMicro" | "taskLoss") => run.reduce((s, m) => s + m[key], 0) / run.length;
  assert.ok(mean(micro, "maxVioMicro") < mean(global, "maxVioMicro") - 0.3);
  assert.ok(mean(micro, "taskLoss") > mean(global, "taskLoss"), "the specialisation it forbids costs task loss");
});

test("loss-free: the step's LBL is measured on the loads its biased routing produced", () => {
  const config: LayerConfig = { ...defaultLayerConfig, strategy: "loss-free" };
  const task = makeTask(config);
  const params = initialParameters(config);
  // a few steps so that the bias is no longer zero
  for (let step = 0; step < 30; step++) trainStep(config, params, task, step);
  assert.ok(
    params.bias.some((b) => b !== 0),
    "the bias has moved",
  );
  const batch = sampleBatch(config, task, 30);
  const f = forward(config, params, batch);
  const lengths = new Array(config.microBatches).fill(config.microBatchSize);
  const logits = { data: f.logits, layers: 1, tokens: batch.size, experts: config.experts };
  const biased = lossRecord(summarize(logits, config.topK, lengths, { selectionBias: params.bias }), 1).lbl.global;
  const unbiased = lossRecord(summarize(logits, config.topK, lengths), 1).lbl.global;
  assert.notEqual(biased, unbiased, "the bias changes which experts are chosen here");
  const metrics = trainStep(config, params, task, 30);
  assertClose(metrics.lbl, biased, 1e-12, "reported LBL uses the routing's own loads");
});
