// The "Your framework" library: each framework's scalar against values
// derived by hand from its upstream code, its gradient against finite
// differences, the simulated data parallelism and gradient accumulation
// against the single-process analytic references (and off by exactly the
// documented factor where the upstream code is known to be), the effective
// per-layer coefficients and their equivalents, and bad settings.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { lossGradient } from "../src/lib/losses/gradients.js";
import { summarize } from "../src/lib/summary.js";
import { LabInputError, type RouterLogits } from "../src/lib/types.js";
import {
  equivalents,
  frameworkGradients,
  frameworkNames,
  frameworkRecord,
  frameworkTerms,
  measuredStrength,
  perLayerStrength,
  type FrameworkName,
  type FrameworkSettings,
} from "../src/lib/frameworks/index.js";
import { frameworks } from "../src/lib/frameworks/catalog.js";
import { assertClose } from "./helpers.js";
import { valueScanCounter } from "../src/lib/validate.js";

/** Settings with only the coefficients the framework has (others are refused, as the CLI refuses them). */
function given(
  framework: FrameworkName,
  alpha: number,
  beta: number,
  extra: Partial<FrameworkSettings> = {},
): FrameworkSettings {
  const spec = frameworks[framework];
  return { framework, ...(spec.lbl ? { alpha } : {}), ...(spec.zLoss ? { beta } : {}), ...extra };
}

/** Reproducible float64 logits, `sequences` sequences of `length` tokens. */
function batch(
  layers: number,
  sequences: number,
  length: number,
  experts: number,
  seed = 3,
  spread = 2,
): { logits: RouterLogits; lengths: number[] } {
  const tokens = sequences * length;
  const data = new Float64Array(layers * tokens * experts);
  let state = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < data.length; i++) {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    data[i] = ((state / 4294967296) * 2 - 1) * spread;
  }
  return { logits: { data, layers, tokens, experts }, lengths: new Array(sequences).fill(length) };
}

// ---- Plain re-implementations of the upstream code, row by row, for small inputs ----

const rows = (logits: RouterLogits, layer: number, start: number, end: number) =>
  Array.from({ length: end - start }, (_, t) =>
    Array.from(
      logits.data.subarray(
        (layer * logits.tokens + start + t) * logits.experts,
        (layer * logits.tokens + start + t + 1) * logits.experts,
      ),
    ),
  );
const softmax = (x: number[]) => {
  const m = Math.max(...x);
  const e = x.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b);
  return e.map((v) => v / s);
};
const lse = (x: number[]) => {
  const m = Math.max(...x);
  return m + Math.log(x.reduce((a, v) => a + Math.exp(v - m), 0));
};
/** torch.topk with the lab's tie rule, as a 0/1 mask. */
const topMask = (x: number[], k: number) => {
  const order = x.map((v, e) => [v, e] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  const m = new Array(x.length).fill(0);
  for (let i = 0; i < k; i++) m[order[i][1]] = 1;
  return m;
};
const columnSum = (m: number[][]) => m[0].map((_, e) => m.reduce((a, r) => a + r[e], 0));

/** Megatron switch_load_balancing_loss_func: sum(probs.sum(0) · tokens_per_expert) · E·coeff / (T·T·topk). */
function megatronSwitch(
  x: number[][],
  k: number,
  coeff: number,
  totalTokens = x.length,
  tokensPerExpert = columnSum(x.map((r) => topMask(r, k))),
): number {
  const probs = columnSum(x.map(softmax));
  const E = x[0].length;
  return (probs.reduce((a, p, e) => a + p * tokensPerExpert[e], 0) * (E * coeff)) / (totalTokens * totalTokens * k);
}
/** transformers load_balancing_loss_func (no attention mask): concatenated layers, token fractions. */
function hfLoss(layers: number[][][], k: number): number {
  const all = layers.flat();
  const E = all[0].length;
  const expertMask = all.map((r) => topMask(r, k));
  const tokensPerExpert = columnSum(expertMask).map((c) => c / all.length);
  const routerProb = columnSum(all.map(softmax)).map((p) => p / all.length);
  return E * tokensPerExpert.reduce((a, f, e) => a + f * routerProb[e], 0);
}
/** MegaBlocks batched_load_balancing_loss: scale = E·w / (num_layers · tokens · top_k), dot(tokens_per_expert, mean expert_scores). */
function megablocksLoss(layers: number[][][], k: number, w: number): number {
  const T = layers[0].length;
  const E = layers[0][0].length;
  let dot = 0;
  for (const x of layers) {
    const c = columnSum(x.map((r) => topMask(r, k)));
    const p = columnSum(x.map(softmax)).map((v) => v / T);
    dot += c.reduce((a, v, e) => a + v * p[e], 0);
  }
  return ((E * w) / (layers.length * T * k)) * dot;
}

test("every framework's scalar equals the value derived by hand from its upstream code (one micro-batch)", () => {
  const { logits, lengths } = batch(3, 4, 6, 8, 5);
  const k = 2;
  const L = logits.layers;
  const T = logits.tokens;
  const layerRows = Array.from({ length: L }, (_, l) => rows(logits, l, 0, T));
  const value = (framework: FrameworkName, extra: Partial<FrameworkSettings> = {}) =>
    frameworkTerms(logits, k, lengths, given(framework, 0.3, 0.7, extra));
  const meanLse2 = (x: number[][]) => x.reduce((a, r) => a + lse(r) ** 2, 0) / x.length;

  // Megatron: every layer attached with the full coefficient.
  assertClose(
    value("megatron").auxLoss,
    layerRows.reduce((a, x) => a + megatronSwitch(x, k, 0.3), 0),
    1e-12,
    "megatron aux",
  );
  assertClose(
    value("megatron").zLoss,
    layerRows.reduce((a, x) => a + 0.7 * meanLse2(x), 0),
    1e-12,
    "megatron z",
  );
  // Megatron seq_aux_loss: per sequence (T_s tokens), ÷ bsz, summed over layers.
  const seq = layerRows.reduce(
    (a, x) =>
      a + lengths.reduce((b, _, s) => b + megatronSwitch(x.slice(s * 6, s * 6 + 6), k, 0.3) / lengths.length, 0),
    0,
  );
  assertClose(value("megatron-seq").auxLoss, seq, 1e-12, "megatron-seq");
  // One rank, one micro-batch: the global variant is the plain one.
  assertClose(value("megatron-global").auxLoss, value("megatron").auxLoss, 1e-12, "megatron-global, DP 1");
  // MegaBlocks and the OLMoE fork: the same LBL; z per router averaged, and the fork's ÷ L·T·k.
  assertClose(value("megablocks").auxLoss, megablocksLoss(layerRows, k, 0.3), 1e-12, "megablocks aux");
  assertClose(value("olmoe").auxLoss, megablocksLoss(layerRows, k, 0.3), 1e-12, "olmoe aux");
  assertClose(
    value("megablocks").zLoss,
    layerRows.reduce((a, x) => a + 0.7 * meanLse2(x), 0) / L,
    1e-12,
    "megablocks z (mean of routers)",
  );
  const naiveSum = layerRows.reduce(
    (a, x) => a + x.reduce((b, r) => b + Math.log(r.reduce((c, v) => c + Math.exp(v), 0)) ** 2, 0),
    0,
  );
  assertClose(value("olmoe").zLoss, (0.7 * naiveSum) / (L * T * k), 1e-12, "olmoe z ÷ L·T·k");
  // OLMo-core: (E/k)·dot(counts, mean scores) / label tokens, × w / L.
  const labels = T - lengths.length;
  const olmoCore =
    (layerRows.reduce((a, x) => {
      const c = columnSum(x.map((r) => topMask(r, k)));
      const p = columnSum(x.map(softmax)).map((v) => v / T);
      return a + ((8 / k) * c.reduce((s, v, e) => s + v * p[e], 0)) / labels;
    }, 0) *
      0.3) /
    L;
  assertClose(value("olmo-core").auxLoss, olmoCore, 1e-12, "olmo-core aux");
  assertClose(
    value("olmo-core").zLoss,
    ((0.7 / L) * layerRows.reduce((a, x) => a + x.reduce((b, r) => b + lse(r) ** 2, 0), 0)) / labels,
    1e-12,
    "olmo-core z",
  );
  // Hugging Face: pooled, token fractions; no z-loss.
  assertClose(value("hf").auxLoss, 0.3 * hfLoss(layerRows, k), 1e-12, "hf aux");
  assert.equal(frameworkTerms(logits, k, lengths, { framework: "hf", alpha: 0.3 }).zLoss, 0);
  assert.equal(
    frameworkTerms(logits, k, lengths, { framework: "hf", alpha: 0.3, outputRouterLogits: false }).auxLoss,
    0,
    "output_router_logits off: no aux loss",
  );
  // OpenMoE / ColossalAI: E² · mean(token fraction · mean prob), mean over layers.
  const openmoe =
    (layerRows.reduce((a, x) => {
      const f = columnSum(x.map((r) => topMask(r, k))).map((c) => c / T);
      const p = columnSum(x.map(softmax)).map((v) => v / T);
      return a + (64 * f.reduce((s, v, e) => s + v * p[e], 0)) / 8;
    }, 0) *
      0.3) /
    L;
  assertClose(value("openmoe").auxLoss, openmoe, 1e-12, "openmoe aux");
  assertClose(value("openmoe").zLoss, (0.7 / L) * layerRows.reduce((a, x) => a + meanLse2(x), 0), 1e-12, "openmoe z");
  // DeepSeek-V3: per sequence f = E/(k·T)·count, P from sigmoid normalised per token.
  const sig = (v: number) => 1 / (1 + Math.exp(-v));
  const ds = layerRows.reduce(
    (a, x) =>
      a +
      lengths.reduce((b, _, s) => {
        const part = x.slice(s * 6, s * 6 + 6);
        const f = columnSum(part.map((r) => topMask(r, k))).map((c) => (8 / (k * 6)) * c);
        const P = columnSum(
          part.map((r) => {
            const g = r.map(sig);
            const sum = g.reduce((u, v) => u + v);
            return g.map((v) => v / sum);
          }),
        ).map((v) => v / 6);
        return b + (0.3 * f.reduce((u, v, e) => u + v * P[e], 0)) / lengths.length;
      }, 0),
    0,
  );
  assertClose(
    frameworkTerms(logits, k, lengths, { framework: "deepseek-v3", alpha: 0.3 }).auxLoss,
    ds,
    1e-12,
    "deepseek-v3",
  );
  // torchtitan adds no loss.
  const titan = frameworkTerms(logits, k, lengths, { framework: "torchtitan" });
  assert.equal(titan.auxLoss + titan.zLoss, 0);
});

test("each framework's gradient matches central finite differences, under DP 2 × GA 2", () => {
  const { logits, lengths } = batch(2, 8, 3, 6, 11, 1.5);
  for (const framework of frameworkNames) {
    if (framework === "torchtitan") continue;
    const k = framework === "openmoe" ? 2 : 3;
    const settings = given(framework, 0.5, 0.2, {
      layout: { dataParallel: 2, gradientAccumulation: 2 },
      averageTokensAcrossDevices: true,
    });
    const g = frameworkGradients(logits, k, lengths, settings);
    const h = 1e-6;
    for (let probe = 0; probe < 12; probe++) {
      const i = (probe * 7919 + 13) % logits.data.length;
      const plus = Float64Array.from(logits.data);
      plus[i] += h;
      const minus = Float64Array.from(logits.data);
      minus[i] -= h;
      // The counts are an arg-top-k: skip a nudge that changes them.
      const a = summarize({ ...logits, data: plus }, k, lengths);
      const b = summarize({ ...logits, data: minus }, k, lengths);
      if (a.load.some((c, j) => c !== b.load[j])) continue;
      const up = frameworkTerms({ ...logits, data: plus }, k, lengths, settings);
      const down = frameworkTerms({ ...logits, data: minus }, k, lengths, settings);
      assertClose(g.auxGradient[i], (up.auxLoss - down.auxLoss) / (2 * h), 1e-5, `${framework} aux ∂/∂x[${i}]`, 1e-9);
      assertClose(g.zGradient[i], (up.zLoss - down.zLoss) / (2 * h), 1e-5, `${framework} z ∂/∂x[${i}]`, 1e-9);
    }
  }
});

/** max |a − b| / max |b|. */
function relativeGap(a: Float64Array, b: Float64Array): number {
  let gap = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    gap = Math.max(gap, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return gap / scale;
}
const scaled = (g: Float64Array, s: number) => g.map((v) => v * s);
/** The rows of sequences [first, end) as their own batch. */
function sliceBatch(logits: RouterLogits, lengths: number[], first: number, end: number): RouterLogits {
  const start = lengths.slice(0, first).reduce((a, b) => a + b, 0);
  const count = lengths.slice(first, end).reduce((a, b) => a + b, 0);
  const data = new Float64Array(logits.layers * count * logits.experts);
  for (let l = 0; l < logits.layers; l++)
    data.set(
      logits.data.subarray(
        (l * logits.tokens + start) * logits.experts,
        (l * logits.tokens + start + count) * logits.experts,
      ),
      l * count * logits.experts,
    );
  return { data, layers: logits.layers, tokens: count, experts: logits.experts };
}
/** Scatters a slice's gradient back into the batch's layout. */
function addSlice(
  target: Float64Array,
  logits: RouterLogits,
  lengths: number[],
  first: number,
  end: number,
  g: Float64Array,
  s: number,
): void {
  const start = lengths.slice(0, first).reduce((a, b) => a + b, 0);
  const count = lengths.slice(first, end).reduce((a, b) => a + b, 0);
  for (let l = 0; l < logits.layers; l++)
    for (let i = 0; i < count * logits.experts; i++)
      target[(l * logits.tokens + start) * logits.experts + i] += s * g[l * count * logits.experts + i];
}

test("simulated DP × GA equals the single-process analytic gradient for correct recipes", () => {
  const { logits, lengths } = batch(3, 8, 5, 8, 21);
  const k = 2;
  const L = logits.layers;
  const layout = { dataParallel: 2, gradientAccumulation: 2 };
  const m = 2; // sequences per micro-batch
  const sim = (framework: FrameworkName, extra: Partial<FrameworkSettings> = {}) =>
    frameworkGradients(logits, k, lengths, given(framework, 1, 1, { layout, ...extra }));
  const microBatch = lossGradient(logits, "lbl.micro_batch", {
    topK: k,
    sequenceLengths: lengths,
    microBatchSequences: m,
  });
  const zMean = lossGradient(logits, "z_loss.st_moe", { topK: k, sequenceLengths: lengths });
  // Megatron aux_loss: the mean of micro-batch losses, summed over layers.
  assert.ok(relativeGap(sim("megatron").auxGradient, scaled(microBatch, L)) < 1e-12);
  assert.ok(relativeGap(sim("megatron").zGradient, scaled(zMean, L)) < 1e-12);
  // MegaBlocks / OLMoE fork: the layer mean; the fork's z ÷ k.
  assert.ok(relativeGap(sim("megablocks").auxGradient, microBatch) < 1e-12);
  assert.ok(
    relativeGap(sim("olmoe").zGradient, lossGradient(logits, "z_loss.olmoe", { topK: k, sequenceLengths: lengths })) <
      1e-12,
  );
  // Megatron seq_aux_loss: per sequence.
  assert.ok(
    relativeGap(
      sim("megatron-seq").auxGradient,
      scaled(lossGradient(logits, "lbl.sequence", { topK: k, sequenceLengths: lengths }), L),
    ) < 1e-12,
  );
  // OLMo-core: the micro-batch LBL, × tokens / label tokens.
  assert.ok(relativeGap(sim("olmo-core").auxGradient, scaled(microBatch, 40 / 32)) < 1e-12);
  // Hugging Face, intended scaling: the mean over micro-batches of each micro-batch's pooled loss.
  const hfReference = new Float64Array(logits.data.length);
  for (let first = 0; first < 8; first += m) {
    const part = sliceBatch(logits, lengths, first, first + m);
    addSlice(
      hfReference,
      logits,
      lengths,
      first,
      first + m,
      lossGradient(part, "lbl.hf", { topK: k, sequenceLengths: lengths.slice(first, first + m) }),
      1 / 4,
    );
  }
  assert.ok(relativeGap(sim("hf", { intended: true }).auxGradient, hfReference) < 1e-12);
});

test("Megatron's global_aux_loss: the running buffer, and the gradient ÷ DP of issue #3672", () => {
  const { logits, lengths } = batch(2, 8, 4, 8, 8);
  const k = 2;
  const L = logits.layers;
  // GA 1: the buffer holds this step's all-reduced counts, so the intended
  // loss is lbl.global (f over the whole batch, P local to each rank).
  const dp4 = { dataParallel: 4, gradientAccumulation: 1 };
  const globalReference = scaled(
    lossGradient(logits, "lbl.global", { topK: k, sequenceLengths: lengths, microBatchSequences: 2 }),
    L,
  );
  const intended = frameworkGradients(logits, k, lengths, {
    framework: "megatron-global",
    alpha: 1,
    layout: dp4,
    intended: true,
  }).auxGradient;
  assert.ok(relativeGap(intended, globalReference) < 1e-12);
  const actual = frameworkGradients(logits, k, lengths, {
    framework: "megatron-global",
    alpha: 1,
    layout: dp4,
  }).auxGradient;
  assert.ok(relativeGap(actual, scaled(globalReference, 1 / 4)) < 1e-12, "÷ DP, as #3672 states");
  // GA 2, DP 1: the first micro-batch sees only its own counts, the second the running average.
  const ga2 = frameworkGradients(logits, k, lengths, {
    framework: "megatron-global",
    alpha: 1,
    layout: { dataParallel: 1, gradientAccumulation: 2 },
  }).auxGradient;
  const first = sliceBatch(logits, lengths, 0, 4);
  const expectedFirst = scaled(
    lossGradient(first, "lbl.switch", { topK: k, sequenceLengths: lengths.slice(0, 4) }),
    L / 2,
  );
  for (let l = 0; l < L; l++) {
    for (let i = 0; i < 16 * 8; i++)
      assertClose(
        ga2[l * 32 * 8 + i],
        expectedFirst[l * 16 * 8 + i],
        1e-10,
        "first micro-batch: its own counts",
        1e-14,
      );
  }
  const full = frameworkGradients(logits, k, lengths, {
    framework: "megatron-global",
    alpha: 1,
    layout: { dataParallel: 1, gradientAccumulation: 1 },
  }).auxGradient;
  assert.ok(relativeGap(ga2, full) > 1e-3, "the causal buffer changes the gradient");
});

test("Hugging Face's Trainer: × GA (summed micro-batches) and × world size with average_tokens_across_devices (#48690)", () => {
  const { logits, lengths } = batch(2, 12, 4, 8, 9);
  const k = 2;
  for (const [dp, ga, averaged] of [
    [2, 3, false],
    [3, 2, true],
    [1, 4, false],
    [4, 1, true],
  ] as const) {
    const layout = { dataParallel: dp, gradientAccumulation: ga };
    const intended = frameworkGradients(logits, k, lengths, {
      framework: "hf",
      alpha: 0.01,
      layout,
      intended: true,
    }).auxGradient;
    const actual = frameworkGradients(logits, k, lengths, {
      framework: "hf",
      alpha: 0.01,
      layout,
      averageTokensAcrossDevices: averaged,
    }).auxGradient;
    const factor = ga * (averaged ? dp : 1);
    assert.ok(
      relativeGap(actual, scaled(intended, factor)) < 1e-12,
      `DP ${dp}, GA ${ga}, average_tokens ${averaged}: × ${factor}`,
    );
  }
});

test("per-layer strength: the formula's factors, measured on the gradient where the loss has the reference's shape", () => {
  const { logits, lengths } = batch(4, 4, 16, 8, 2);
  const shape = { layers: 4, topK: 2 };
  const strength = (framework: FrameworkName, extra: Partial<FrameworkSettings> = {}) =>
    perLayerStrength(given(framework, 0.01, 0.001, extra), shape, lengths);
  assertClose(strength("megatron").alpha!, 0.01, 1e-15);
  assertClose(strength("olmoe").alpha!, 0.01 / 4, 1e-15);
  assertClose(strength("olmoe").beta!, 0.001 / 8, 1e-15);
  assertClose(strength("hf").alpha!, (0.01 * 2) / 4, 1e-15);
  assert.equal(strength("hf").beta, null);
  assert.equal(strength("hf", { outputRouterLogits: false }).alpha, 0);
  // Measured: the projection of each layer's gradient on ∇ of that layer's Switch LBL.
  for (const framework of ["megatron", "megablocks", "olmoe", "openmoe"] as const) {
    const measured = measuredStrength(logits, 2, lengths, { framework, alpha: 0.01, beta: 0.001 });
    const expected = strength(framework);
    for (let l = 0; l < 4; l++) {
      if (framework !== "openmoe") {
        assertClose(measured.alpha[l]!, expected.alpha!, 1e-10, `${framework} layer ${l}`);
        assert.ok(measured.alphaResidual[l]! < 1e-10);
      }
      assertClose(measured.beta[l]!, expected.beta!, 1e-10, `${framework} z layer ${l}`);
    }
  }
  // OpenMoE's token fractions are k × slot fractions: k/L exactly, per layer.
  const openmoe = measuredStrength(logits, 2, lengths, { framework: "openmoe", alpha: 0.01 });
  for (const a of openmoe.alpha) assertClose(a!, (0.01 * 2) / 4, 1e-10, "openmoe");
  // Hugging Face: ≈ c·k/L, exact only when the layers route alike: with every layer the same logits, exact.
  const same = new Float64Array(logits.data.length);
  for (let l = 0; l < 4; l++) same.set(logits.data.subarray(0, 64 * 8), l * 64 * 8);
  const alike = measuredStrength({ ...logits, data: same }, 2, lengths, { framework: "hf", alpha: 0.01 });
  for (const a of alike.alpha) assertClose(a!, (0.01 * 2) / 4, 1e-10, "hf, layers alike");
});

test("equivalent settings: OLMoE-1B-7B's numbers", () => {
  const shape = { layers: 16, topK: 8 };
  const lengths = [4096, 4096, 4096, 4096];
  const fromOlmoe = equivalents({ framework: "olmoe", alpha: 0.01, beta: 0.001 }, shape, lengths);
  const megatron = fromOlmoe.find((e) => e.framework === "megatron")!;
  assertClose(megatron.alpha!, 0.000625, 1e-12, "OLMoE-1B-7B's balancing in Megatron-LM");
  assertClose(megatron.beta!, 0.001 / 128, 1e-12, "its z-loss in Megatron-LM: 128× weaker");
  const hf = fromOlmoe.find((e) => e.framework === "hf")!;
  assertClose(hf.alpha!, 0.00125, 1e-12, "the HF coefficient that reproduces pretraining pressure");
  assert.equal(hf.beta, null, "HF has no z-loss");
  // Fine-tuning in HF with the config's 0.01 applies 8× the pretraining per-layer pressure.
  const fineTune = perLayerStrength({ framework: "hf", alpha: 0.01 }, shape, lengths).alpha!;
  assertClose(fineTune / perLayerStrength({ framework: "olmoe", alpha: 0.01 }, shape, lengths).alpha!, 8, 1e-12);
  // Round trip: every framework's equivalent maps back to the same strength.
  for (const e of fromOlmoe) {
    if (e.alpha === null) continue;
    assertClose(
      perLayerStrength({ framework: e.framework, alpha: e.alpha, beta: e.beta ?? undefined }, shape, lengths).alpha!,
      0.000625,
      1e-12,
      e.framework,
    );
  }
});

test("the CLI record: values, per-layer strengths and defaults", () => {
  const { logits, lengths } = batch(2, 4, 8, 8, 4);
  const record = frameworkRecord(logits, 2, lengths, { framework: "olmoe" });
  assert.equal(record.alpha, 0.01);
  assert.equal(record.beta, 0.001);
  assertClose(record.aux_loss, frameworkTerms(logits, 2, lengths, { framework: "olmoe" }).auxLoss, 0);
  assertClose(record.per_layer_beta!, 0.001 / (2 * 2), 1e-15);
});

test("float64 logits 1e-10 apart choose the larger, as the framework would", () => {
  const experts = 4;
  const data = Float64Array.from([1, 1 + 2e-10, 0, 0, 1 + 3e-10, 1, 0, 0]);
  const logits = { data, layers: 1, tokens: 2, experts };
  const summary = summarize(logits, 1, [2]);
  assert.deepEqual(Array.from(summary.load), [1, 1, 0, 0]);
  // A framework's scalar sees the same choice: f = (½, ½, 0, 0).
  const value = frameworkTerms(logits, 1, [2], { framework: "megatron", alpha: 1 }).auxLoss;
  const p = [softmax([1, 1 + 2e-10, 0, 0]), softmax([1 + 3e-10, 1, 0, 0])];
  assertClose(value, 4 * ((0.5 * (p[0][0] + p[1][0])) / 2 + (0.5 * (p[0][1] + p[1][1])) / 2), 1e-14);
});

test("bad settings end in one clear sentence", () => {
  const { logits, lengths } = batch(1, 6, 2, 4);
  const bad = (settings: FrameworkSettings, pattern: RegExp, k = 2) =>
    assert.throws(
      () => frameworkTerms(logits, k, lengths, settings),
      (e: unknown) => e instanceof LabInputError && pattern.test(e.message),
    );
  bad({ framework: "nope" as FrameworkName }, /unknown framework/);
  bad({ framework: "megatron", alpha: -1 }, /load-balancing coefficient must be a finite number ≥ 0/);
  bad({ framework: "megatron", beta: Number.NaN }, /z-loss coefficient/);
  bad(
    { framework: "megatron", layout: { dataParallel: 4, gradientAccumulation: 1 } },
    /DP × GA must divide the number of sequences/,
  );
  bad({ framework: "megatron", layout: { dataParallel: 0, gradientAccumulation: 1 } }, /positive integer/);
  bad({ framework: "megatron", layout: { dataParallel: 1, gradientAccumulation: 1.5 } }, /positive integer/);
  bad({ framework: "openmoe" }, /only top-1 and top-2/, 3);
  bad({ framework: "torchtitan", alpha: 0.01 }, /no load-balancing loss/);
  bad({ framework: "hf", beta: 0.001 }, /no router z-loss/);
});

test("property: with intended scaling, the simulated layout never changes a whole-batch framework's per-micro-batch mean", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 3 }),
      fc.integer({ min: 1, max: 3 }),
      fc.integer({ min: 1, max: 1000 }),
      (dp, ga, seed) => {
        const { logits, lengths } = batch(2, dp * ga * 2, 3, 6, seed);
        const layout = { dataParallel: dp, gradientAccumulation: ga };
        const g = frameworkGradients(logits, 2, lengths, { framework: "megatron", alpha: 1, layout }).auxGradient;
        const reference = scaled(
          lossGradient(logits, "lbl.micro_batch", { topK: 2, sequenceLengths: lengths, microBatchSequences: 2 }),
          2,
        );
        return relativeGap(g, reference) < 1e-12;
      },
    ),
    { numRuns: 25 },
  );
});

test("Megatron's --calculate-per-token-loss: equal to the default with equal micro-batches, token-weighted otherwise", async () => {
  const { padSequences } = await import("../src/lib/frameworks/simulate.js");
  const { logits, lengths } = batch(2, 4, 6, 8, 31);
  const layout = { dataParallel: 2, gradientAccumulation: 2 };
  const plain = frameworkGradients(logits, 2, lengths, { framework: "megatron", alpha: 1, layout });
  const perToken = frameworkGradients(logits, 2, lengths, {
    framework: "megatron",
    alpha: 1,
    layout,
    perTokenLoss: true,
  });
  assert.ok(relativeGap(perToken.auxGradient, plain.auxGradient) < 1e-12);
  // Unequal sequences: each micro-batch's Switch LBL weighted by its share of the tokens.
  const unequal = [3, 9, 5, 7];
  const data = logits.data.subarray(0, 2 * 24 * 8);
  const x = { data: Float64Array.from(data), layers: 2, tokens: 24, experts: 8 };
  const weighted = frameworkTerms(x, 2, unequal, {
    framework: "megatron",
    alpha: 1,
    layout: { dataParallel: 4, gradientAccumulation: 1 },
    perTokenLoss: true,
  }).auxLoss;
  let expected = 0;
  for (const length of unequal) {
    const part = sliceBatch(x, unequal, unequal.indexOf(length), unequal.indexOf(length) + 1);
    const layerSum = frameworkTerms(part, 2, [length], { framework: "megatron", alpha: 1 }).auxLoss;
    expected += (length / 24) * layerSum;
  }
  assertClose(weighted, expected, 1e-12, "token-weighted");
  assert.throws(() => frameworkTerms(x, 2, unequal, { framework: "hf", perTokenLoss: true }), /Megatron-LM option/);
  // Padding: counted pads pile on experts 0…k−1; the padded batch's values differ from the masked (unpadded) one.
  const padded = padSequences(x, unequal, 10);
  assert.equal(padded.padTokens, 16);
  assert.equal(padded.logits.tokens, 40);
  const counted = summarize(padded.logits, 2, padded.sequenceLengths);
  const masked = summarize(x, 2, unequal);
  for (let l = 0; l < 2; l++)
    for (let e = 0; e < 2; e++) {
      const c = (sum: typeof counted, expert: number) =>
        Array.from({ length: 4 }, (_, s) => sum.load[(l * 4 + s) * 8 + expert]).reduce((a, b) => a + b, 0);
      assert.equal(c(counted, e) - c(masked, e), 16, `layer ${l}: every pad on expert ${e}`);
    }
  assert.throws(() => padSequences(x, unequal, 8), /at least the longest sequence \(9 tokens\)/);
});

test("the framework record and the measured strength scan the logits' values once each, padded or not", () => {
  const { logits, lengths } = batch(2, 4, 6, 8);
  for (const padTo of [undefined, 9]) {
    const settings = given("megatron", 0.01, 0.001, { padTo, layout: { dataParallel: 2, gradientAccumulation: 2 } });
    const before = valueScanCounter.scans;
    frameworkRecord(logits, 2, lengths, settings);
    assert.equal(valueScanCounter.scans - before, 1, `frameworkRecord, padTo ${padTo}`);
    measuredStrength(logits, 2, lengths, settings);
    assert.equal(valueScanCounter.scans - before, 2, `measuredStrength, padTo ${padTo}`);
  }
  // and a bad value is still caught on that one scan
  const bad = Float64Array.from(logits.data);
  bad[5] = Number.NaN;
  assert.throws(
    () => measuredStrength({ ...logits, data: bad }, 2, lengths, given("megatron", 0.01, 0.001)),
    /router logit at layer 0, token 0, expert 5 is NaN/,
  );
});
