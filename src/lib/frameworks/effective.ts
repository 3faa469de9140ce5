/**
 * "What coefficient am I training with?": the per-layer strength of a
 * framework's configured coefficients in common units, measured on the
 * logits' gradient as well as derived from the formula, and the setting of
 * every other framework that applies the same strength.
 *
 * Common units: one layer's Switch LBL on routing slots (`E·Σ f P`) with
 * weight 1 for the load-balancing loss; one layer's mean `lse²` with weight 1
 * for the z-loss. These are Megatron-LM's units (it attaches each layer's
 * loss with the full coefficient).
 */
import { lossGradient } from "../losses/gradients.js";
import type { RouterLogits } from "../types.js";
import { frameworks, frameworkNames, type FrameworkName, type Shape } from "./catalog.js";
import {
  batchAsSeen,
  coefficients,
  seenGradients,
  seenTerms,
  type FrameworkSettings,
  type ParallelLayout,
} from "./simulate.js";
import { summarizeBatch } from "../summary.js";

/**
 * The factor by which the trainer's scaling under this layout multiplies the
 * per-layer strength, against a single process: HF's sum over micro-batches
 * (× GA) and `average_tokens_across_devices` (× DP), Megatron's global
 * variant's ÷ DP, OLMo-core's label-token normalisation. The simulation in
 * simulate.ts applies the same scaling rule by rule; the tests check that its
 * gradients reproduce these factors.
 */
export function layoutFactor(settings: FrameworkSettings, sequenceLengths: readonly number[]): number {
  const layout = settings.layout ?? { dataParallel: 1, gradientAccumulation: 1 };
  switch (settings.framework) {
    case "hf":
      if (settings.outputRouterLogits === false) return 0;
      if (settings.intended) return 1;
      return layout.gradientAccumulation * (settings.averageTokensAcrossDevices ? layout.dataParallel : 1);
    case "megatron-global":
      return settings.intended ? 1 : 1 / layout.dataParallel;
    case "olmo-core": {
      const tokens = sequenceLengths.reduce((a, b) => a + b, 0);
      return tokens / (tokens - sequenceLengths.length);
    }
    default:
      return 1;
  }
}

/** The z-loss's factor: OLMo-core's label-token normalisation is the only layout effect on it. */
export function zLayoutFactor(settings: FrameworkSettings, sequenceLengths: readonly number[]): number {
  return settings.framework === "olmo-core" ? layoutFactor(settings, sequenceLengths) : 1;
}

export interface PerLayerStrength {
  /** From the formula: coefficient × the convention's per-layer factor × the layout factor; null when the framework has no such loss. */
  readonly alpha: number | null;
  readonly beta: number | null;
}

export function perLayerStrength(
  settings: FrameworkSettings,
  shape: Shape,
  sequenceLengths: readonly number[],
): PerLayerStrength {
  const spec = frameworks[settings.framework];
  const { alpha, beta } = coefficients(settings);
  return {
    alpha: spec.lbl ? alpha * spec.lbl.perLayer(shape) * layoutFactor(settings, sequenceLengths) : null,
    beta: spec.zLoss ? beta * spec.zLoss.perLayer(shape) * zLayoutFactor(settings, sequenceLengths) : null,
  };
}

export interface MeasuredStrength {
  /**
   * Per layer: the framework's gradient on that layer's router logits
   * projected on the reference gradient (∇ of that layer's Switch LBL, or of
   * its mean lse², over the whole batch in one process), as a multiple of it.
   * Equal to the formula's strength when the framework's loss has the
   * reference's shape (same granularity, layers routing alike); null when
   * the reference gradient vanishes.
   */
  readonly alpha: (number | null)[];
  readonly beta: (number | null)[];
  /**
   * Per layer: the part of the framework's LBL gradient that is not a
   * multiple of the reference, relative to it (0: the same direction).
   */
  readonly alphaResidual: (number | null)[];
}

export function measuredStrength(
  logits: RouterLogits,
  topK: number,
  sequenceLengths: readonly number[],
  settings: FrameworkSettings,
): MeasuredStrength {
  // The references are taken on the batch as the framework sees it (pads
  // included when counted), checked once by batchAsSeen.
  const seen = batchAsSeen(logits, topK, sequenceLengths, settings);
  ({ logits, sequenceLengths } = seen);
  const { layers } = logits;
  const framework = seenGradients(seen, settings);
  // The library's own closed forms, averaged over layers, give each layer's
  // gradient ÷ L: multiply back.
  const summary = summarizeBatch(seen);
  const switchReference = lossGradient(logits, "lbl.switch", { topK, sequenceLengths, summary });
  const zReference = lossGradient(logits, "z_loss.st_moe", { topK, sequenceLengths, summary });
  const perLayerRows = logits.tokens * logits.experts;
  const project = (g: Float64Array, ref: Float64Array, l: number) => {
    let dot = 0;
    let norm = 0;
    for (let i = l * perLayerRows; i < (l + 1) * perLayerRows; i++) {
      dot += g[i] * ref[i] * layers;
      norm += (ref[i] * layers) ** 2;
    }
    if (!(norm > 0)) return { ratio: null, residual: null };
    const ratio = dot / norm;
    let rest = 0;
    for (let i = l * perLayerRows; i < (l + 1) * perLayerRows; i++) rest += (g[i] - ratio * ref[i] * layers) ** 2;
    return { ratio, residual: Math.sqrt(rest / norm) };
  };
  const spec = frameworks[settings.framework];
  const alpha: (number | null)[] = [];
  const beta: (number | null)[] = [];
  const alphaResidual: (number | null)[] = [];
  for (let l = 0; l < layers; l++) {
    const a = spec.lbl ? project(framework.auxGradient, switchReference, l) : { ratio: null, residual: null };
    alpha.push(a.ratio);
    alphaResidual.push(a.residual);
    beta.push(spec.zLoss ? project(framework.zGradient, zReference, l).ratio : null);
  }
  return { alpha, beta, alphaResidual };
}

export interface Equivalent {
  readonly framework: FrameworkName;
  /** The coefficient that framework needs for the same per-layer strength; null when it has no such loss. */
  readonly alpha: number | null;
  readonly beta: number | null;
}

/**
 * For every framework, the coefficients that give the same per-layer
 * strength as `settings` under the same layout (other frameworks with their
 * default trainer flags).
 */
export function equivalents(
  settings: FrameworkSettings,
  shape: Shape,
  sequenceLengths: readonly number[],
): Equivalent[] {
  const strength = perLayerStrength(settings, shape, sequenceLengths);
  return frameworkNames.map((name) => {
    const spec = frameworks[name];
    const other: FrameworkSettings = { framework: name, layout: settings.layout };
    const lblFactor = spec.lbl ? spec.lbl.perLayer(shape) * layoutFactor(other, sequenceLengths) : 0;
    const zFactor = spec.zLoss ? spec.zLoss.perLayer(shape) * zLayoutFactor(other, sequenceLengths) : 0;
    return {
      framework: name,
      alpha: strength.alpha !== null && lblFactor > 0 ? strength.alpha / lblFactor : null,
      beta: strength.beta !== null && zFactor > 0 ? strength.beta / zFactor : null,
    };
  });
}

/** The `framework` entry of `moe-lab losses --framework`. */
export interface FrameworkRecord {
  name: FrameworkName;
  alpha: number;
  beta: number;
  data_parallel: number;
  gradient_accumulation: number;
  /** The load-balancing term the framework adds for this batch, coefficient included. */
  aux_loss: number;
  /** The z-loss term, coefficient included (0 when the framework has none). */
  z_loss: number;
  /** Pad tokens counted (0: none, or masked). */
  pad_tokens: number;
  /** Per-layer strength in common units (per-layer Switch LBL on slots; per-layer mean lse²); null: no such loss. */
  per_layer_alpha: number | null;
  per_layer_beta: number | null;
}

export function frameworkRecord(
  logits: RouterLogits,
  topK: number,
  sequenceLengths: readonly number[],
  settings: FrameworkSettings,
): FrameworkRecord {
  const layout: ParallelLayout = settings.layout ?? { dataParallel: 1, gradientAccumulation: 1 };
  const seen = batchAsSeen(logits, topK, sequenceLengths, settings);
  const { auxLoss, zLoss, alpha, beta } = seenTerms(seen, settings);
  const strength = perLayerStrength(settings, { layers: logits.layers, topK }, seen.sequenceLengths);
  return {
    name: settings.framework,
    alpha,
    beta,
    data_parallel: layout.dataParallel,
    gradient_accumulation: layout.gradientAccumulation,
    aux_loss: auxLoss,
    z_loss: zLoss,
    pad_tokens: seen.logits.tokens - logits.tokens,
    per_layer_alpha: strength.alpha,
    per_layer_beta: strength.beta,
  };
}
