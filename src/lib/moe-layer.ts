/**
 * One MoE layer small enough to train in a browser tab, step by step, with
 * the library's analytic gradients (no autodiff): a linear router over E
 * linear experts, OLMoE gates (top-k of the softmax, not renormalised), on a
 * synthetic mixture of clustered inputs where each cluster has its own target
 * map, so that experts gain by specialising.
 *
 * Shapes: inputs N × d, targets N × o, router d × E, experts E × d × o.
 * A batch is M micro-batches of n samples; each micro-batch is drawn from a
 * single cluster, like a micro-batch of one domain, which is where micro-batch
 * and global-batch balancing part ways.
 */
import { addLossGradient } from "./losses/gradients.js";
import { lossRecord } from "./losses/index.js";
import { lossDescriptors } from "./losses/registry.js";
import { lossName } from "./losses/descriptor.js";
import { maxVioOfLoad } from "./losses/max-vio.js";
import { normalGenerator, uniformGenerator } from "./random.js";
import { summarize, type RoutingSummary } from "./summary.js";
import { softmaxRow, topKRow } from "./routing.js";
import { updateBias } from "./loss-free.js";

export type Strategy = "none" | "lbl-micro" | "lbl-global" | "loss-free";

export interface LayerConfig {
  experts: number;
  topK: number;
  inputDim: number;
  outputDim: number;
  clusters: number;
  microBatches: number;
  microBatchSize: number;
  learningRate: number;
  strategy: Strategy;
  /** LBL coefficient (lbl-micro, lbl-global). */
  alpha: number;
  /** z-loss coefficient, OLMoE normalisation (÷ k). */
  beta: number;
  /** Bias update rate (loss-free). */
  biasRate: number;
  seed: number;
}

export const defaultLayerConfig: LayerConfig = {
  experts: 8,
  topK: 2,
  inputDim: 16,
  outputDim: 8,
  clusters: 8,
  microBatches: 8,
  microBatchSize: 32,
  learningRate: 0.05,
  strategy: "lbl-global",
  alpha: 1,
  beta: 0.001,
  biasRate: 0.01,
  seed: 1,
};

export interface LayerParameters {
  router: Float64Array;
  experts: Float64Array;
  bias: Float64Array;
}

export interface Task {
  centres: Float64Array; // clusters × d
  maps: Float64Array; // clusters × d × o
}

export interface Batch {
  inputs: Float64Array;
  targets: Float64Array;
  cluster: Int32Array;
  size: number;
}

export interface StepMetrics {
  step: number;
  taskLoss: number;
  lbl: number;
  zLoss: number;
  maxVio: number;
  maxVioMicro: number;
  load: number[];
}

export function makeTask(config: LayerConfig): Task {
  const normal = normalGenerator(config.seed * 7 + 1);
  const { clusters, inputDim: d, outputDim: o } = config;
  return {
    centres: Float64Array.from({ length: clusters * d }, () => 2 * normal()),
    maps: Float64Array.from({ length: clusters * d * o }, () => normal() / Math.sqrt(d)),
  };
}

export function initialParameters(config: LayerConfig): LayerParameters {
  const normal = normalGenerator(config.seed * 7 + 2);
  const { experts: E, inputDim: d, outputDim: o } = config;
  return {
    router: Float64Array.from({ length: d * E }, () => 0.01 * normal()),
    experts: Float64Array.from({ length: E * d * o }, () => normal() / Math.sqrt(d)),
    bias: new Float64Array(E),
  };
}

/**
 * The arrays a training step fills, made once per run and overwritten by each
 * step. In Chromium a fresh typed array of 16 KB costs 40–80 µs (its memory
 * is allocated and zeroed outside V8's heap; Node: ~7 µs), and a step made 28
 * arrays, twelve of them 1–32 KB. Reused, the page's training worker ran 1.8×
 * the steps per second (753 against 408, a fresh worker; 1081 against 584 on
 * its third run). The functions below take them as an optional last argument;
 * without it each call makes its own.
 */
export interface StepBuffers {
  batch: Batch;
  forward: ForwardBuffers;
  gradients: GradientBuffers;
  /** The batch's slots per expert (E), and one micro-batch's (E). */
  load: Float64Array;
  microBatchLoad: Float64Array;
}

export function stepBuffers(config: LayerConfig): StepBuffers {
  const size = config.microBatches * config.microBatchSize;
  return {
    batch: batchBuffers(config),
    forward: forwardBuffers(config, size),
    gradients: gradientBuffers(config, size),
    load: new Float64Array(config.experts),
    microBatchLoad: new Float64Array(config.experts),
  };
}

/**
 * Throws unless `array` holds as many values as this config and batch give
 * it: arrays made for another shape would be written past their end, which a
 * typed array ignores, and give wrong numbers without a word. One array a
 * call, no array literal: built per step, the list of checks had cost a
 * third of the worker's steps per second in Chromium.
 */
function expectLength(what: string, name: string, array: { length: number }, length: number): void {
  if (array.length !== length)
    throw new Error(
      `the ${what} arrays were made for another shape: ${name} holds ${array.length} values, not ${length}`,
    );
}

function batchBuffers(config: LayerConfig): Batch {
  const size = config.microBatches * config.microBatchSize;
  return {
    inputs: new Float64Array(size * config.inputDim),
    targets: new Float64Array(size * config.outputDim),
    cluster: new Int32Array(size),
    size,
  };
}

/** A batch of M single-cluster micro-batches, reproducible from (seed, step), written into `into`. */
export function sampleBatch(config: LayerConfig, task: Task, step: number, into: Batch = batchBuffers(config)): Batch {
  const uniform = uniformGenerator(config.seed * 1_000_003 + step);
  const normal = normalGenerator(config.seed * 1_000_033 + step);
  const { inputDim: d, outputDim: o, microBatches, microBatchSize } = config;
  const size = microBatches * microBatchSize;
  expectLength("batch", "inputs", into.inputs, size * d);
  expectLength("batch", "targets", into.targets, size * o);
  expectLength("batch", "cluster", into.cluster, size);
  const { inputs, targets, cluster } = into;
  // The arrays in locals, here and in forward and gradients: V8 then keeps them
  // in registers through the inner loops instead of reloading each property
  // (a store to one typed array could alias another): 0.91× the time per step.
  const { centres, maps } = task;
  for (let m = 0; m < microBatches; m++) {
    const c = Math.floor(uniform() * config.clusters);
    for (let i = m * microBatchSize; i < (m + 1) * microBatchSize; i++) {
      cluster[i] = c;
      for (let j = 0; j < d; j++) inputs[i * d + j] = centres[c * d + j] + normal();
      for (let q = 0; q < o; q++) {
        let t = 0;
        for (let j = 0; j < d; j++) t += inputs[i * d + j] * maps[(c * d + j) * o + q];
        targets[i * o + q] = t;
      }
    }
  }
  return into;
}

export interface Forward {
  logits: Float64Array; // N × E
  probs: Float64Array; // N × E
  chosen: Int32Array; // N × k
  expertOutputs: Float64Array; // N × k × o
  outputs: Float64Array; // N × o
}

/** A forward pass's arrays, and one row's probabilities and selection scores (E each). */
export interface ForwardBuffers extends Forward {
  rowProbs: Float64Array;
  rowScores: Float64Array;
}

function forwardBuffers(config: LayerConfig, N: number): ForwardBuffers {
  const { experts: E, topK: k, outputDim: o } = config;
  return {
    logits: new Float64Array(N * E),
    probs: new Float64Array(N * E),
    chosen: new Int32Array(N * k),
    expertOutputs: new Float64Array(N * k * o),
    outputs: new Float64Array(N * o),
    rowProbs: new Float64Array(E),
    rowScores: new Float64Array(E),
  };
}

export function forward(
  config: LayerConfig,
  params: LayerParameters,
  batch: Batch,
  into: ForwardBuffers = forwardBuffers(config, batch.size),
): Forward {
  const { experts: E, topK: k, inputDim: d, outputDim: o } = config;
  const N = batch.size;
  expectLength("forward", "logits", into.logits, N * E);
  expectLength("forward", "chosen", into.chosen, N * k);
  expectLength("forward", "expertOutputs", into.expertOutputs, N * k * o);
  expectLength("forward", "rowProbs", into.rowProbs, E);
  const { logits, probs, chosen, expertOutputs, outputs, rowProbs: p, rowScores: scores } = into;
  outputs.fill(0); // summed over each sample's k experts
  const { inputs } = batch;
  const { router, experts, bias } = params;
  for (let i = 0; i < N; i++) {
    for (let e = 0; e < E; e++) {
      let z = 0;
      for (let j = 0; j < d; j++) z += inputs[i * d + j] * router[j * E + e];
      logits[i * E + e] = z;
    }
    softmaxRow(logits, i * E, E, p);
    probs.set(p, i * E);
    for (let e = 0; e < E; e++) scores[e] = p[e] + bias[e];
    topKRow(scores, E, k, chosen, i * k);
    for (let s = 0; s < k; s++) {
      const e = chosen[i * k + s];
      for (let q = 0; q < o; q++) {
        let v = 0;
        for (let j = 0; j < d; j++) v += inputs[i * d + j] * experts[(e * d + j) * o + q];
        expertOutputs[(i * k + s) * o + q] = v;
        outputs[i * o + q] += p[e] * v; // OLMoE gate: p itself
      }
    }
  }
  return into;
}

/** Total loss = task MSE + α·LBL (per strategy) + β·z-loss, and its parts. */
export function objective(
  config: LayerConfig,
  params: LayerParameters,
  batch: Batch,
): { total: number; task: number; lbl: number; z: number } {
  const f = forward(config, params, batch);
  const task = meanSquaredError(f.outputs, batch.targets);
  const { lbl, z } = auxiliaryValues(config, routingSummary(config, params, f.logits, batch.size));
  return { total: task + auxiliaryWeight(config) * lbl + config.beta * z, task, lbl, z };
}

function meanSquaredError(outputs: Float64Array, targets: Float64Array): number {
  let s = 0;
  for (let i = 0; i < outputs.length; i++) s += (outputs[i] - targets[i]) ** 2;
  return s / outputs.length;
}

function auxiliaryWeight(config: LayerConfig): number {
  return config.strategy === "lbl-micro" || config.strategy === "lbl-global" ? config.alpha : 0;
}

function layout(config: LayerConfig): { lengths: number[]; lblName: "lbl.micro_batch" | "lbl.global" } {
  return {
    lengths: new Array(config.microBatches).fill(config.microBatchSize),
    lblName: config.strategy === "lbl-micro" ? "lbl.micro_batch" : "lbl.global",
  };
}

/**
 * The batch's routing summary (micro-batches as sequences): computed once per
 * step, shared by values and gradients. Loss-free routing chose its experts by
 * probability + bias, so its summary counts the loads with that same bias.
 */
function routingSummary(
  config: LayerConfig,
  params: LayerParameters,
  logits: Float64Array,
  size: number,
): RoutingSummary {
  const selectionBias = config.strategy === "loss-free" ? params.bias : undefined;
  return summarize(
    { data: logits, layers: 1, tokens: size, experts: config.experts },
    config.topK,
    layout(config).lengths,
    { selectionBias },
  );
}

/** The losses a step reports (its LBL, per micro-batch or global, and the z-loss): the registry's other eight would be computed every step for nothing. */
const reportedLosses = lossDescriptors.filter((d) =>
  ["lbl.micro_batch", "lbl.global", "z_loss.olmoe"].includes(lossName(d)),
);

function auxiliaryValues(config: LayerConfig, summary: RoutingSummary): { lbl: number; z: number } {
  const record = lossRecord(summary, 1, reportedLosses);
  return {
    lbl: layout(config).lblName === "lbl.micro_batch" ? record.lbl.micro_batch : record.lbl.global,
    z: record.z_loss.olmoe,
  };
}

/** The gradients (router d × E, experts E × d × o) and their intermediates: ∂/∂logits (N × E), ∂/∂output (o), ∂/∂p (E). */
export interface GradientBuffers {
  router: Float64Array;
  experts: Float64Array;
  dLogits: Float64Array;
  dOut: Float64Array;
  dProb: Float64Array;
}

function gradientBuffers(config: LayerConfig, N: number): GradientBuffers {
  const { experts: E, inputDim: d, outputDim: o } = config;
  return {
    router: new Float64Array(d * E),
    experts: new Float64Array(E * d * o),
    dLogits: new Float64Array(N * E),
    dOut: new Float64Array(o),
    dProb: new Float64Array(E),
  };
}

/**
 * Gradients of `objective` with respect to router and experts. The top-k
 * choice and the LBL's `f` are held fixed (they have no gradient), as in
 * every MoE implementation.
 */
export function gradients(
  config: LayerConfig,
  params: LayerParameters,
  batch: Batch,
  f: Forward = forward(config, params, batch),
  summary = routingSummary(config, params, f.logits, batch.size),
  into: GradientBuffers = gradientBuffers(config, batch.size),
): { router: Float64Array; experts: Float64Array } {
  const { experts: E, topK: k, inputDim: d, outputDim: o } = config;
  const N = batch.size;
  expectLength("gradient", "experts", into.experts, E * d * o);
  expectLength("gradient", "dLogits", into.dLogits, N * E);
  const { router, experts, dLogits, dOut, dProb } = into;
  router.fill(0); // both summed over the batch
  experts.fill(0);
  const { inputs, targets } = batch;
  const { outputs, chosen, probs, expertOutputs } = f;
  for (let i = 0; i < N; i++) {
    for (let q = 0; q < o; q++) dOut[q] = (2 * (outputs[i * o + q] - targets[i * o + q])) / (N * o);
    dProb.fill(0);
    for (let s = 0; s < k; s++) {
      const e = chosen[i * k + s];
      const gate = probs[i * E + e];
      let dot = 0;
      for (let q = 0; q < o; q++) dot += dOut[q] * expertOutputs[(i * k + s) * o + q];
      dProb[e] += dot;
      for (let j = 0; j < d; j++) {
        const x = inputs[i * d + j] * gate;
        for (let q = 0; q < o; q++) experts[(e * d + j) * o + q] += x * dOut[q];
      }
    }
    // softmax Jacobian: ∂L/∂x_j = p_j (∂L/∂p_j − Σ_e p_e ∂L/∂p_e)
    let expected = 0;
    for (let e = 0; e < E; e++) expected += probs[i * E + e] * dProb[e];
    for (let e = 0; e < E; e++) dLogits[i * E + e] = probs[i * E + e] * (dProb[e] - expected);
  }
  const logits = { data: f.logits, layers: 1, tokens: N, experts: E };
  const { lengths, lblName } = layout(config);
  const alpha = auxiliaryWeight(config);
  if (alpha > 0)
    addLossGradient(
      logits,
      lblName,
      { topK: k, sequenceLengths: lengths, microBatchSequences: 1, summary },
      dLogits,
      alpha,
    );
  if (config.beta > 0) addLossGradient(logits, "z_loss.olmoe", { topK: k, summary }, dLogits, config.beta);
  for (let i = 0; i < N; i++)
    for (let j = 0; j < d; j++) {
      const x = inputs[i * d + j];
      for (let e = 0; e < E; e++) router[j * E + e] += x * dLogits[i * E + e];
    }
  return { router, experts };
}

/**
 * One step of plain gradient descent (and the bias update for loss-free).
 * `buffers`: a run's arrays (`stepBuffers`), reused from step to step.
 */
export function trainStep(
  config: LayerConfig,
  params: LayerParameters,
  task: Task,
  step: number,
  buffers: StepBuffers = stepBuffers(config),
): StepMetrics {
  const batch = sampleBatch(config, task, step, buffers.batch);
  const f = forward(config, params, batch, buffers.forward);
  const summary = routingSummary(config, params, f.logits, batch.size);
  const grads = gradients(config, params, batch, f, summary, buffers.gradients);
  for (let i = 0; i < params.router.length; i++) params.router[i] -= config.learningRate * grads.router[i];
  for (let i = 0; i < params.experts.length; i++) params.experts[i] -= config.learningRate * grads.experts[i];
  const { load, microBatchLoad: local } = buffers;
  load.fill(0);
  for (const e of f.chosen) load[e]++;
  let maxVioMicro = 0;
  for (let m = 0; m < config.microBatches; m++) {
    local.fill(0);
    for (let i = m * config.microBatchSize * config.topK; i < (m + 1) * config.microBatchSize * config.topK; i++)
      local[f.chosen[i]]++;
    maxVioMicro += maxVioOfLoad(local, config.microBatchSize, config.topK) / config.microBatches;
  }
  if (config.strategy === "loss-free")
    params.bias.set(updateBias(params.bias, load, config.experts, batch.size, config.topK, config.biasRate));
  const { lbl, z } = auxiliaryValues(config, summary);
  return {
    step,
    taskLoss: meanSquaredError(f.outputs, batch.targets),
    lbl,
    zLoss: z,
    maxVio: maxVioOfLoad(load, batch.size, config.topK),
    maxVioMicro,
    load: Array.from(load),
  };
}

/** Runs `steps` steps from scratch: same config and seed, same curve. */
export function trainRun(config: LayerConfig, steps: number): StepMetrics[] {
  const task = makeTask(config);
  const params = initialParameters(config);
  const buffers = stepBuffers(config);
  return Array.from({ length: steps }, (_, step) => trainStep(config, params, task, step, buffers));
}
