/**
 * A framework's balancing terms on a batch of router logits, as its code
 * computes them, with data parallelism and gradient accumulation simulated
 * exactly: the batch's sequences are split into ranks and micro-batches, each
 * micro-batch computes its own counts and probabilities (all-reduced or
 * buffered where the framework does that), its term is scaled as the
 * framework's trainer scales it before backward, and the gradients of the
 * ranks are averaged as DDP averages them. No cluster is involved: every
 * rank is a slice of the same arrays.
 *
 * Every term in every framework is a weighted sum of router scores over a
 * block of rows: `scale · Σ_t Σ_e w_e q[t][e]` (q the softmax, or for
 * DeepSeek-V3 the per-token normalised sigmoid), or a z-loss
 * `scale · Σ_t lse[t]²`. The counts `c` sit in the weights and carry no
 * gradient (they come from an arg-top-k), so one evaluator gives both the
 * value and the exact gradient of any recipe.
 */
import { sequenceOffsets } from "../batching.js";
import { topKRow } from "../routing.js";
import { LabInputError, type LogitsBatch, type RouterLogits } from "../types.js";
import { markChecked, validateBatch } from "../validate.js";
import { frameworks, type FrameworkName } from "./catalog.js";

export interface ParallelLayout {
  /** Data-parallel ranks. */
  readonly dataParallel: number;
  /** Gradient-accumulation micro-batches per rank and optimizer step. */
  readonly gradientAccumulation: number;
}

export interface FrameworkSettings {
  readonly framework: FrameworkName;
  /** The load-balancing coefficient as configured; default: the framework's documented default. */
  readonly alpha?: number;
  /** The z-loss coefficient as configured; default: the framework's documented default. */
  readonly beta?: number;
  readonly layout?: ParallelLayout;
  /** Hugging Face: `output_router_logits` (the configs default it to false: no aux loss). */
  readonly outputRouterLogits?: boolean;
  /** Hugging Face Trainer: `average_tokens_across_devices`. */
  readonly averageTokensAcrossDevices?: boolean;
  /**
   * Pad every sequence to this many tokens and count the pads (no padding
   * mask); undefined: no pads, as with a mask.
   */
  readonly padTo?: number;
  /** Megatron-LM: `--calculate-per-token-loss` (each micro-batch's term weighted by its tokens). */
  readonly perTokenLoss?: boolean;
  /**
   * Apply the scaling the framework intends instead of the one its code
   * applies today (HF: ÷ accumulation steps and no × world size; Megatron
   * global: × DP). The simulated gradient of every framework with this set
   * equals the single-process analytic reference.
   */
  readonly intended?: boolean;
}

export interface MicroBatchSlice {
  readonly rank: number;
  readonly step: number;
  readonly firstSequence: number;
  readonly endSequence: number;
  readonly firstToken: number;
  readonly endToken: number;
}

/**
 * Splits the batch's sequences over `dataParallel × gradientAccumulation`
 * micro-batches of equal sequence counts, in time order: micro-step g takes
 * the g-th block of `dataParallel · m` sequences, and rank r its r-th part.
 */
export function microBatchSlices(sequenceLengths: readonly number[], layout: ParallelLayout): MicroBatchSlice[] {
  validateLayout(layout, sequenceLengths.length);
  const { dataParallel, gradientAccumulation } = layout;
  const perMicroBatch = sequenceLengths.length / (dataParallel * gradientAccumulation);
  const offsets = sequenceOffsets(sequenceLengths);
  const slices: MicroBatchSlice[] = [];
  for (let step = 0; step < gradientAccumulation; step++) {
    for (let rank = 0; rank < dataParallel; rank++) {
      const firstSequence = (step * dataParallel + rank) * perMicroBatch;
      const endSequence = firstSequence + perMicroBatch;
      slices.push({
        rank,
        step,
        firstSequence,
        endSequence,
        firstToken: offsets[firstSequence],
        endToken: offsets[endSequence],
      });
    }
  }
  return slices;
}

export function validateLayout(layout: ParallelLayout, sequences: number): void {
  for (const [name, value] of [
    ["data-parallel size", layout.dataParallel],
    ["gradient-accumulation steps", layout.gradientAccumulation],
  ] as const) {
    if (!Number.isSafeInteger(value) || value < 1)
      throw new LabInputError(`the ${name} must be a positive integer; got ${value}`);
  }
  const parts = layout.dataParallel * layout.gradientAccumulation;
  if (sequences % parts !== 0) {
    throw new LabInputError(
      `${sequences} sequence${sequences === 1 ? "" : "s"} cannot be split into ${layout.dataParallel} rank${layout.dataParallel === 1 ? "" : "s"} × ${layout.gradientAccumulation} micro-batch${layout.gradientAccumulation === 1 ? "" : "es"} of equal size: DP × GA must divide the number of sequences`,
    );
  }
}

/**
 * The batch as a trainer that pads would see it: every sequence padded at its
 * end to `tokensPerSequence` tokens with pad rows whose router logits are all
 * equal (every pad token gets the same logits, whatever the router makes of
 * the pad embedding; with all-equal ones the tie rule sends them all to
 * experts 0…k−1). Counted pads are what a loss without a padding mask sees
 * (Megatron-LM without `padding_mask`, #1984/#2121; HF's
 * `load_balancing_loss_func` without `attention_mask`); masked pads are the
 * unpadded batch.
 */
export function padSequences(
  logits: RouterLogits,
  sequenceLengths: readonly number[],
  tokensPerSequence: number,
): { logits: RouterLogits; sequenceLengths: number[]; padTokens: number } {
  const longest = Math.max(...sequenceLengths);
  if (!Number.isSafeInteger(tokensPerSequence) || tokensPerSequence < longest) {
    throw new LabInputError(`pad to at least the longest sequence (${longest} tokens); got ${tokensPerSequence}`);
  }
  const { layers, tokens, experts } = logits;
  const padded = sequenceLengths.length * tokensPerSequence;
  const data = new Float64Array(layers * padded * experts);
  const offsets = sequenceOffsets(sequenceLengths);
  for (let l = 0; l < layers; l++) {
    for (let s = 0; s < sequenceLengths.length; s++) {
      const from = (l * tokens + offsets[s]) * experts;
      data.set(
        logits.data.subarray(from, from + sequenceLengths[s] * experts),
        (l * padded + s * tokensPerSequence) * experts,
      );
    }
  }
  return {
    logits: { data, layers, tokens: padded, experts },
    sequenceLengths: sequenceLengths.map(() => tokensPerSequence),
    padTokens: padded - tokens,
  };
}

export function validateCoefficient(name: string, value: number): void {
  if (!Number.isFinite(value) || value < 0)
    throw new LabInputError(`${name} must be a finite number ≥ 0; got ${value}`);
}

/** A weighted sum of router scores over rows `[start, end)` of one layer. */
interface ScoreTerm {
  readonly kind: "lbl";
  readonly layer: number;
  readonly start: number;
  readonly end: number;
  readonly weights: Float64Array;
  readonly scale: number;
  readonly score: "softmax" | "normalised-sigmoid";
}

/** `scale · Σ_t lse[t]²` over rows `[start, end)` of one layer. */
interface ZTerm {
  readonly kind: "z";
  readonly layer: number;
  readonly start: number;
  readonly end: number;
  readonly scale: number;
}

type Term = ScoreTerm | ZTerm;

export interface FrameworkTerms {
  /** The load-balancing term the optimizer's gradient corresponds to for this batch, coefficient included (0 when the framework adds none). */
  readonly auxLoss: number;
  /** The z-loss term, likewise. */
  readonly zLoss: number;
  readonly alpha: number;
  readonly beta: number;
}

export interface FrameworkGradients extends FrameworkTerms {
  /** ∂auxLoss/∂x, layers × tokens × experts. */
  readonly auxGradient: Float64Array;
  /** ∂zLoss/∂x. */
  readonly zGradient: Float64Array;
}

/** The coefficients in force: given ones, or the framework's documented defaults. */
export function coefficients(settings: FrameworkSettings): { alpha: number; beta: number } {
  const spec = frameworks[settings.framework];
  const alpha = settings.alpha ?? spec.lbl?.defaultCoefficient ?? 0;
  const beta = settings.beta ?? spec.zLoss?.defaultCoefficient ?? 0;
  validateCoefficient("the load-balancing coefficient", alpha);
  validateCoefficient("the z-loss coefficient", beta);
  if (settings.alpha !== undefined && !spec.lbl)
    throw new LabInputError(`${spec.label} adds no load-balancing loss, so it takes no load-balancing coefficient`);
  if (settings.beta !== undefined && !spec.zLoss)
    throw new LabInputError(`${spec.label} has no router z-loss, so it takes no z-loss coefficient`);
  return { alpha, beta };
}

/** The batch as a framework sees it, checked once (`checkedBatch`): what `seenGradients` and `seenTerms` take. */
export interface SeenBatch extends LogitsBatch {
  /** Pad tokens counted (0 without `padTo`). */
  readonly padTokens: number;
}

/**
 * The batch as the framework sees it: padded, with the pads counted, when
 * `padTo` is set. The input is checked here, once; what comes out needs no
 * second check.
 */
export function batchAsSeen(
  logits: RouterLogits,
  topK: number,
  sequenceLengths: readonly number[],
  settings: FrameworkSettings,
): SeenBatch {
  validateBatch(logits, { topK, sequenceLengths });
  const seen =
    settings.padTo === undefined
      ? { logits, sequenceLengths, padTokens: 0 }
      : padSequences(logits, sequenceLengths, settings.padTo);
  // Valid input padded with valid (all-equal) rows is valid: mark it checked without a second scan.
  return markChecked({ ...seen, topK });
}

/** Values and exact gradients of what the framework adds, on the batch as it sees it (`batchAsSeen`). */
export function frameworkGradients(
  logits: RouterLogits,
  topK: number,
  sequenceLengths: readonly number[],
  settings: FrameworkSettings,
): FrameworkGradients {
  return seenGradients(batchAsSeen(logits, topK, sequenceLengths, settings), settings);
}

/** `frameworkGradients` on a batch `batchAsSeen` made (pads already added: `settings.padTo` is ignored). */
export function seenGradients(seen: SeenBatch, settings: FrameworkSettings): FrameworkGradients {
  const { logits, topK, sequenceLengths } = seen;
  const { terms, alpha, beta } = buildTerms(logits, topK, sequenceLengths, settings);
  const auxGradient = new Float64Array(logits.data.length);
  const zGradient = new Float64Array(logits.data.length);
  const auxLoss = evaluate(
    logits,
    terms.filter((t) => t.kind === "lbl"),
    auxGradient,
  );
  const zLoss = evaluate(
    logits,
    terms.filter((t) => t.kind === "z"),
    zGradient,
  );
  return { auxLoss, zLoss, alpha, beta, auxGradient, zGradient };
}

/** Values only. */
export function frameworkTerms(
  logits: RouterLogits,
  topK: number,
  sequenceLengths: readonly number[],
  settings: FrameworkSettings,
): FrameworkTerms {
  return seenTerms(batchAsSeen(logits, topK, sequenceLengths, settings), settings);
}

/** `frameworkTerms` on a batch `batchAsSeen` made (pads already added: `settings.padTo` is ignored). */
export function seenTerms(seen: SeenBatch, settings: FrameworkSettings): FrameworkTerms {
  const { logits, topK, sequenceLengths } = seen;
  const { terms, alpha, beta } = buildTerms(logits, topK, sequenceLengths, settings);
  return {
    auxLoss: evaluate(
      logits,
      terms.filter((t) => t.kind === "lbl"),
      null,
    ),
    zLoss: evaluate(
      logits,
      terms.filter((t) => t.kind === "z"),
      null,
    ),
    alpha,
    beta,
  };
}

/** Per micro-batch statistics the recipes need, computed from that micro-batch's rows only. */
interface LocalCounts {
  /** Slot counts per layer and sequence of the slice: [layer][sequence in slice] → E counts. */
  readonly bySequence: Float64Array[][];
  /** Slot counts per layer over the slice. */
  readonly total: Float64Array[];
}

function countSlice(
  logits: RouterLogits,
  topK: number,
  offsets: readonly number[],
  slice: MicroBatchSlice,
): LocalCounts {
  const { layers, tokens, experts, data } = logits;
  const chosen = new Int32Array(topK);
  const row = new Float64Array(experts);
  const bySequence: Float64Array[][] = [];
  const total: Float64Array[] = [];
  for (let l = 0; l < layers; l++) {
    const perSequence: Float64Array[] = [];
    const sum = new Float64Array(experts);
    for (let s = slice.firstSequence; s < slice.endSequence; s++) {
      const counts = new Float64Array(experts);
      for (let t = offsets[s]; t < offsets[s + 1]; t++) {
        const offset = (l * tokens + t) * experts;
        // Top-k of the logits themselves: the same experts as top-k of the
        // softmax or of the sigmoid (both monotonic), with no rounding in
        // between, so float64 logits a few 1e-10 apart keep their order.
        for (let e = 0; e < experts; e++) row[e] = data[offset + e];
        topKRow(row, experts, topK, chosen);
        for (let i = 0; i < topK; i++) counts[chosen[i]] += 1;
      }
      for (let e = 0; e < experts; e++) sum[e] += counts[e];
      perSequence.push(counts);
    }
    bySequence.push(perSequence);
    total.push(sum);
  }
  return { bySequence, total };
}

/** The batch must already be as the framework sees it: `batchAsSeen` validated it (once: the value scan is the costly part). */
function buildTerms(
  logits: RouterLogits,
  topK: number,
  sequenceLengths: readonly number[],
  settings: FrameworkSettings,
): { terms: Term[]; alpha: number; beta: number } {
  const spec = frameworks[settings.framework];
  if (!spec) throw new LabInputError(`unknown framework '${settings.framework}'`);
  if (spec.supportedTopK && !spec.supportedTopK.includes(topK)) {
    throw new LabInputError(
      `${spec.label} has only top-${spec.supportedTopK.join(" and top-")} routers; these logits use top-${topK}`,
    );
  }
  const { alpha, beta } = coefficients(settings);
  const layout = settings.layout ?? { dataParallel: 1, gradientAccumulation: 1 };
  const slices = microBatchSlices(sequenceLengths, layout);
  const offsets = sequenceOffsets(sequenceLengths);
  const { layers, experts } = logits;
  const dp = layout.dataParallel;
  const ga = layout.gradientAccumulation;
  const counts = slices.map((slice) => countSlice(logits, topK, offsets, slice));
  const terms: Term[] = [];
  const lengthOf = (s: number) => offsets[s + 1] - offsets[s];

  // How the trainer scales one micro-batch's term, times DDP's 1/DP.
  const ddp = 1 / dp;
  const totalTokens = offsets[offsets.length - 1];
  if (settings.perTokenLoss && !settings.framework.startsWith("megatron")) {
    throw new LabInputError(`--calculate-per-token-loss is a Megatron-LM option; ${spec.label} does not have it`);
  }
  // Megatron's per-token mode scales each micro-batch's term by its token count
  // and divides every gradient by the global token count (finalize_model_grads,
  // #5047): the same as 1/(GA·DP) when micro-batches hold equal token counts.
  const trainerScale = (slice: MicroBatchSlice) =>
    settings.perTokenLoss ? (slice.endToken - slice.firstToken) / totalTokens : ddp / ga;

  const lblTerm = (
    layer: number,
    start: number,
    end: number,
    weights: Float64Array,
    scale: number,
    score: ScoreTerm["score"] = "softmax",
  ): void => {
    if (scale !== 0) terms.push({ kind: "lbl", layer, start, end, weights, scale, score });
  };
  const zTerm = (layer: number, start: number, end: number, scale: number): void => {
    if (scale !== 0) terms.push({ kind: "z", layer, start, end, scale });
  };

  // The running buffer of Megatron's global_aux_loss, per layer, reset at each optimizer step.
  const buffer = Array.from({ length: layers }, () => new Float64Array(experts));

  slices.forEach((slice, i) => {
    const T = slice.endToken - slice.firstToken;
    const meanOfMicroBatches = trainerScale(slice);
    const local = counts[i];
    const sequences = slice.endSequence - slice.firstSequence;
    switch (settings.framework) {
      case "megatron":
        for (let l = 0; l < layers; l++) {
          lblTerm(
            l,
            slice.firstToken,
            slice.endToken,
            local.total[l],
            (meanOfMicroBatches * alpha * experts) / (topK * T * T),
          );
          zTerm(l, slice.firstToken, slice.endToken, (meanOfMicroBatches * beta) / T);
        }
        break;
      case "megatron-seq":
        for (let l = 0; l < layers; l++) {
          for (let s = slice.firstSequence; s < slice.endSequence; s++) {
            const Ts = lengthOf(s);
            lblTerm(
              l,
              offsets[s],
              offsets[s + 1],
              local.bySequence[l][s - slice.firstSequence],
              (meanOfMicroBatches * alpha * experts) / (topK * Ts * Ts * sequences),
            );
          }
          zTerm(l, slice.firstToken, slice.endToken, (meanOfMicroBatches * beta) / T);
        }
        break;
      case "megatron-global": {
        if (slice.rank === 0) {
          // All-reduce over the data-parallel ranks of this micro-step, into the buffer.
          for (let l = 0; l < layers; l++)
            for (let j = 0; j < dp; j++) for (let e = 0; e < experts; e++) buffer[l][e] += counts[i + j].total[l][e];
        }
        const stepsSoFar = slice.step + 1;
        // Megatron divides by the global token count squared: (DP·T)². The
        // intended scale (Qiu et al.; the fix proposed in PR #3769) is DP·T².
        const tokenSquare = settings.intended ? dp * T * T : dp * T * dp * T;
        for (let l = 0; l < layers; l++) {
          const averaged = buffer[l].map((c) => c / stepsSoFar);
          lblTerm(
            l,
            slice.firstToken,
            slice.endToken,
            averaged,
            (meanOfMicroBatches * alpha * experts) / (topK * tokenSquare),
          );
          zTerm(l, slice.firstToken, slice.endToken, (meanOfMicroBatches * beta) / T);
        }
        break;
      }
      case "megablocks":
      case "olmoe":
        for (let l = 0; l < layers; l++) {
          lblTerm(
            l,
            slice.firstToken,
            slice.endToken,
            local.total[l],
            (meanOfMicroBatches * alpha * experts) / (layers * topK * T * T),
          );
          const divideByK = settings.framework === "olmoe" ? topK : 1;
          zTerm(l, slice.firstToken, slice.endToken, (meanOfMicroBatches * beta) / (layers * T * divideByK));
        }
        break;
      case "olmo-core": {
        // The rank's label tokens over all its micro-batches (tokens minus one per sequence).
        let labelTokens = 0;
        for (const other of slices)
          if (other.rank === slice.rank)
            labelTokens += other.endToken - other.firstToken - (other.endSequence - other.firstSequence);
        if (labelTokens === 0)
          throw new LabInputError(
            "every sequence has one token, so OLMo-core's trainer would divide by zero label tokens",
          );
        for (let l = 0; l < layers; l++) {
          lblTerm(
            l,
            slice.firstToken,
            slice.endToken,
            local.total[l],
            (ddp * alpha * experts) / (layers * topK * T * labelTokens),
          );
          zTerm(l, slice.firstToken, slice.endToken, (ddp * beta) / (layers * labelTokens));
        }
        break;
      }
      case "hf": {
        if (settings.outputRouterLogits === false) break;
        // Not ÷ GA in the Trainer for these models; × world size with average_tokens_across_devices.
        const hfScale = settings.intended ? meanOfMicroBatches : ddp * (settings.averageTokensAcrossDevices ? dp : 1);
        const tokenFraction = new Float64Array(experts);
        for (let l = 0; l < layers; l++)
          for (let e = 0; e < experts; e++) tokenFraction[e] += local.total[l][e] / (layers * T);
        for (let l = 0; l < layers; l++)
          lblTerm(l, slice.firstToken, slice.endToken, tokenFraction, (hfScale * alpha * experts) / (layers * T));
        break;
      }
      case "openmoe":
        for (let l = 0; l < layers; l++) {
          // E² · mean_e(f·P) with token fractions f = c/T: E · Σ_e (c_e/T)(Σ_t p/T).
          lblTerm(
            l,
            slice.firstToken,
            slice.endToken,
            local.total[l],
            (meanOfMicroBatches * alpha * experts) / (layers * T * T),
          );
          zTerm(l, slice.firstToken, slice.endToken, (meanOfMicroBatches * beta) / (layers * T));
        }
        break;
      case "deepseek-v3":
        for (let l = 0; l < layers; l++) {
          for (let s = slice.firstSequence; s < slice.endSequence; s++) {
            const Ts = lengthOf(s);
            lblTerm(
              l,
              offsets[s],
              offsets[s + 1],
              local.bySequence[l][s - slice.firstSequence],
              (meanOfMicroBatches * alpha * experts) / (topK * Ts * Ts * sequences),
              "normalised-sigmoid",
            );
          }
        }
        break;
      case "torchtitan":
        break;
    }
    // The buffer resets at each optimizer step; one step is simulated, so
    // it never needs to.
  });
  return { terms, alpha, beta };
}

/** Sums the terms' values and, when `gradient` is given, adds their exact gradients into it. */
function evaluate(logits: RouterLogits, terms: readonly Term[], gradient: Float64Array | null): number {
  const { tokens, experts, data } = logits;
  const q = new Float64Array(experts);
  const slope = new Float64Array(experts);
  let value = 0;
  for (const term of terms) {
    for (let t = term.start; t < term.end; t++) {
      const offset = (term.layer * tokens + t) * experts;
      let max = -Infinity;
      for (let e = 0; e < experts; e++) if (data[offset + e] > max) max = data[offset + e];
      if (term.kind === "z" || term.score === "softmax") {
        let sum = 0;
        for (let e = 0; e < experts; e++) sum += q[e] = Math.exp(data[offset + e] - max);
        for (let e = 0; e < experts; e++) q[e] /= sum;
        if (term.kind === "z") {
          const lse = max + Math.log(sum);
          value += term.scale * lse * lse;
          if (gradient) for (let e = 0; e < experts; e++) gradient[offset + e] += term.scale * 2 * lse * q[e];
          continue;
        }
        // ∂/∂x_j Σ_e w_e p_e = p_j (w_j − Σ_e w_e p_e)
        let expected = 0;
        for (let e = 0; e < experts; e++) expected += term.weights[e] * q[e];
        value += term.scale * expected;
        if (gradient)
          for (let e = 0; e < experts; e++) gradient[offset + e] += term.scale * q[e] * (term.weights[e] - expected);
      } else {
        // q_e = σ(x_e) / Σ σ: ∂/∂x_j Σ_e w_e q_e = σ'(x_j)/S · (w_j − Σ_e w_e q_e)
        let sum = 0;
        for (let e = 0; e < experts; e++) {
          const s = sigmoid(data[offset + e]);
          q[e] = s;
          slope[e] = s * (1 - s);
          sum += s;
        }
        let expected = 0;
        for (let e = 0; e < experts; e++) expected += term.weights[e] * (q[e] /= sum);
        value += term.scale * expected;
        if (gradient)
          for (let e = 0; e < experts; e++)
            gradient[offset + e] += (term.scale * slope[e] * (term.weights[e] - expected)) / sum;
      }
    }
  }
  return value;
}

function sigmoid(x: number): number {
  // Both branches avoid exp of a large positive number.
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const z = Math.exp(x);
  return z / (1 + z);
}
