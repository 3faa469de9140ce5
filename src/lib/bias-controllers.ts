/**
 * Expert-bias controllers side by side on one stream of batches: each routes
 * every batch by top-k of its selection scores plus its bias, counts the
 * loads, and updates the bias for the next batch. Sources:
 *   - sign: Wang et al. 2024 (arXiv 2408.15664), `b ← b + u·sign(c̄ − c)`;
 *     Megatron-LM `moe_utils.py` `get_updated_expert_bias` and OLMo-core do not re-centre;
 *   - sign, re-centred: torchtitan `components/optimizer.py` (the update's mean
 *     is subtracted; pytorch/torchtitan #1506);
 *   - proportional: `b ← b + u·(c̄ − c)/c̄`, the relative load error, as this
 *     lab's training recipe (`data/recipe/train.py` `bias_update`);
 *   - multiplicative: the score is multiplied by `1 + b` instead of shifted by
 *     `b` (Wang et al. 2024, Table 5: additive was better);
 *   - sign then γ → 0: DeepSeek-V3 (arXiv 2412.19437 §4.2) stops updating the
 *     bias for the last 500 B of its 14.8 T tokens;
 *   - quantile balancing: the bias that balances a batch exactly
 *     (`quantile-balancing.ts`), applied to the next batch (Megatron-LM PR
 *     #5349 writes it back once per global batch), with an EMA blend, or to
 *     the same batch (exact but non-causal: future tokens move earlier ones).
 */
import { softmaxRow, topKRow } from "./routing.js";
import { maxVioOfLoad } from "./losses/max-vio.js";
import { recentre, solveQuantileBias } from "./quantile-balancing.js";
import { syntheticBatch, type Domain } from "./synthetic.js";

export type ControllerRule =
  | "sign"
  | "sign-recentred"
  | "proportional"
  | "multiplicative"
  | "sign-frozen"
  | "quantile"
  | "quantile-ema"
  | "quantile-same-batch";

export interface ControllerSpec {
  readonly rule: ControllerRule;
  /**
   * u, in score units (sign, re-centred, frozen, proportional per 100 % of
   * load error) or as a relative factor (multiplicative). Quantile rules ignore it.
   */
  readonly rate: number;
  /** quantile-ema: the weight of the new batch's solution, 0–1. */
  readonly ema?: number;
  /** sign-frozen: the first batch with γ = 0 (the bias is held from then on). */
  readonly freezeAt?: number;
}

/** A stream of batches of selection scores (after the score function, before any bias). */
export interface ScoreStream {
  readonly experts: number;
  readonly topK: number;
  readonly tokensPerBatch: number;
  /** One `tokens × experts` array per batch. */
  readonly batches: readonly Float64Array[];
  /** The first batch after the distribution changes (the domain switch), if any. */
  readonly switchAt?: number;
}

export interface ControllerTrace {
  readonly spec: ControllerSpec;
  /** MaxVio of each batch as routed by the controller. */
  readonly maxVio: Float64Array;
  /** The bias each batch was routed with: batches × experts. */
  readonly bias: Float64Array;
  /** Whether the rule is causal: a batch's route depends on earlier batches only. */
  readonly causal: boolean;
}

/**
 * Runs every controller over the same stream. The quantile rules share one
 * solve per batch; pass `solved` (from `quantileSolutions`) to reuse it
 * across calls on the same stream.
 */
export function runControllers(
  stream: ScoreStream,
  specs: readonly ControllerSpec[],
  solved?: readonly Float64Array[],
): ControllerTrace[] {
  if (solved === undefined && specs.some((s) => s.rule.startsWith("quantile"))) solved = quantileSolutions(stream);
  if (solved !== undefined && solved.length !== stream.batches.length)
    throw new Error(`${solved.length} quantile solutions for ${stream.batches.length} batches`);
  return specs.map((spec) => runController(stream, spec, solved ?? []));
}

/**
 * Each batch's exact balancing bias, warm-started from the previous batch's
 * (as Megatron-LM starts each global batch from the last β).
 */
export function quantileSolutions(stream: ScoreStream): Float64Array[] {
  const { experts, topK, tokensPerBatch } = stream;
  const out: Float64Array[] = [];
  let previous: Float64Array | undefined;
  for (const batch of stream.batches) {
    const { bias } = solveQuantileBias(batch, tokensPerBatch, experts, topK, { init: previous });
    out.push(bias);
    previous = bias;
  }
  return out;
}

function runController(stream: ScoreStream, spec: ControllerSpec, solved: readonly Float64Array[]): ControllerTrace {
  const { experts: E, topK, tokensPerBatch: T, batches } = stream;
  const steps = batches.length;
  const maxVio = new Float64Array(steps);
  const biasTrace = new Float64Array(steps * E);
  const bias = new Float64Array(E);
  const load = new Float64Array(E);
  const row = new Float64Array(E);
  const chosen = new Int32Array(topK);
  const meanLoad = (T * topK) / E;
  const multiplicative = spec.rule === "multiplicative";
  for (let step = 0; step < steps; step++) {
    if (spec.rule === "quantile-same-batch") bias.set(solved[step]);
    biasTrace.set(bias, step * E);
    const scores = batches[step];
    load.fill(0);
    for (let t = 0; t < T; t++) {
      for (let e = 0; e < E; e++) {
        const s = scores[t * E + e];
        row[e] = multiplicative ? s * (1 + bias[e]) : s + bias[e];
      }
      topKRow(row, E, topK, chosen);
      for (let i = 0; i < topK; i++) load[chosen[i]]++;
    }
    maxVio[step] = maxVioOfLoad(load, T, topK);
    switch (spec.rule) {
      case "sign":
      case "sign-recentred":
      case "sign-frozen":
      case "multiplicative": {
        if (spec.rule === "sign-frozen" && step + 1 >= (spec.freezeAt ?? Infinity)) break;
        const delta = Float64Array.from(load, (c) => spec.rate * Math.sign(meanLoad - c));
        if (spec.rule === "sign-recentred") recentre(delta);
        for (let e = 0; e < E; e++) bias[e] += delta[e];
        // a multiplier 1 + b must stay positive, or the order of the scores flips
        if (multiplicative) for (let e = 0; e < E; e++) bias[e] = Math.max(bias[e], -0.99);
        break;
      }
      case "proportional":
        for (let e = 0; e < E; e++) bias[e] += (spec.rate * (meanLoad - load[e])) / meanLoad;
        break;
      case "quantile":
        bias.set(solved[step]);
        break;
      case "quantile-ema": {
        const w = spec.ema ?? 0.5;
        for (let e = 0; e < E; e++) bias[e] = step === 0 ? solved[0][e] : (1 - w) * bias[e] + w * solved[step][e];
        break;
      }
      case "quantile-same-batch":
        break;
    }
  }
  return { spec, maxVio, bias: biasTrace, causal: spec.rule !== "quantile-same-batch" };
}

/** What a control engineer reads off a trace, around the switch. */
export interface ControllerReport {
  /** Mean MaxVio over the `window` batches before the switch. */
  readonly before: number;
  /** The largest MaxVio after the switch. */
  readonly peak: number;
  /** Mean MaxVio over the last `window` batches. */
  readonly after: number;
  /**
   * Batches after the switch until the 5-batch moving average of MaxVio
   * enters, for good, the band `after + max(10 % of (peak − after), 2 sd)`;
   * null if it never does.
   */
  readonly settling: number | null;
  /**
   * How far the biases run past where they end up, after the switch, as a
   * share of how far they had to move: Σ_e max overshoot / Σ_e |b_end − b_switch|.
   */
  readonly overshoot: number;
  /** Mean over experts of the bias's peak-to-peak over the last `window` batches (its units). */
  readonly oscillation: number;
}

export function controllerReport(
  trace: ControllerTrace,
  switchAt: number,
  experts: number,
  window = 10,
): ControllerReport {
  const { maxVio, bias } = trace;
  const steps = maxVio.length;
  if (switchAt < window || steps - switchAt < 2 * window)
    throw new Error(`the stream needs ${window} batches before the switch and ${2 * window} after it`);
  const mean = (from: number, to: number): number => {
    let s = 0;
    for (let i = from; i < to; i++) s += maxVio[i];
    return s / (to - from);
  };
  const before = mean(switchAt - window, switchAt);
  const after = mean(steps - window, steps);
  let sd = 0;
  for (let i = steps - window; i < steps; i++) sd += (maxVio[i] - after) ** 2;
  sd = Math.sqrt(sd / (window - 1));
  let peak = -Infinity;
  for (let i = switchAt; i < steps; i++) peak = Math.max(peak, maxVio[i]);
  const band = after + Math.max(0.1 * (peak - after), 2 * sd);
  let settling: number | null = null;
  for (let i = steps - 1; i >= switchAt; i--) {
    const from = Math.max(switchAt, i - 4);
    if (mean(from, i + 1) > band) break;
    settling = i - switchAt;
  }

  // Bias: where each expert ends (mean of the last window), where it was at the switch.
  let moved = 0;
  let overshot = 0;
  let oscillation = 0;
  for (let e = 0; e < experts; e++) {
    let end = 0;
    let lo = Infinity;
    let hi = -Infinity;
    for (let i = steps - window; i < steps; i++) {
      const b = bias[i * experts + e];
      end += b / window;
      lo = Math.min(lo, b);
      hi = Math.max(hi, b);
    }
    oscillation += (hi - lo) / experts;
    const start = bias[switchAt * experts + e];
    const direction = Math.sign(end - start);
    moved += Math.abs(end - start);
    let furthest = 0;
    for (let i = switchAt; i < steps; i++) furthest = Math.max(furthest, (bias[i * experts + e] - end) * direction);
    overshot += furthest;
  }
  return { before, peak, after, settling, overshoot: moved > 0 ? overshot / moved : 0, oscillation };
}

/** The scale of a stream's scores: the mean over tokens of the standard deviation of one token's scores across experts. */
export function scoreScale(stream: ScoreStream): number {
  const { experts: E, tokensPerBatch: T } = stream;
  let total = 0;
  let rows = 0;
  for (const batch of stream.batches) {
    for (let t = 0; t < T; t++) {
      let m = 0;
      for (let e = 0; e < E; e++) m += batch[t * E + e];
      m /= E;
      let v = 0;
      for (let e = 0; e < E; e++) v += (batch[t * E + e] - m) ** 2;
      total += Math.sqrt(v / E);
      rows++;
    }
  }
  return total / rows;
}

export interface SyntheticStreamOptions {
  readonly experts: number;
  readonly topK: number;
  readonly tokensPerBatch: number;
  readonly batches: number;
  /** The first batch of the second domain (prose after code). */
  readonly switchAt: number;
  readonly score: "sigmoid" | "softmax";
  /** Spread of the experts' popularity. */
  readonly popularity?: number;
  /** How strongly each domain prefers its own half of the experts. */
  readonly specialization?: number;
  readonly sequencesPerBatch?: number;
  readonly seed?: number;
}

/**
 * A labelled synthetic stream: one fixed router (`syntheticBatch`'s
 * popularity and domain preferences), code until `switchAt`, prose after.
 */
export function syntheticScoreStream(options: SyntheticStreamOptions): ScoreStream {
  const { experts: E, topK, tokensPerBatch: T, batches, switchAt } = options;
  const perBatch = options.sequencesPerBatch ?? 4;
  if (T % perBatch !== 0) throw new Error(`tokens per batch (${T}) must divide into ${perBatch} sequences`);
  const domains: Domain[] = Array.from({ length: batches * perBatch }, (_, s) =>
    Math.floor(s / perBatch) < switchAt ? "code" : "prose",
  );
  const { logits } = syntheticBatch({
    experts: E,
    domains,
    tokensPerSequence: T / perBatch,
    popularity: options.popularity ?? 0.5,
    specialization: options.specialization ?? 0.5,
    seed: options.seed ?? 1,
  });
  return scoreStreamOfLogits(logits.data, T * batches, E, topK, T, options.score, switchAt);
}

/**
 * Cuts rows of router logits (`tokens × experts`, e.g. one layer of a
 * reader's file) into batches of selection scores; a last partial batch is dropped.
 */
export function scoreStreamOfLogits(
  logits: ArrayLike<number>,
  tokens: number,
  experts: number,
  topK: number,
  tokensPerBatch: number,
  score: "sigmoid" | "softmax",
  switchAt?: number,
): ScoreStream {
  const count = Math.floor(tokens / tokensPerBatch);
  const batches: Float64Array[] = [];
  for (let b = 0; b < count; b++) {
    const out = new Float64Array(tokensPerBatch * experts);
    for (let t = 0; t < tokensPerBatch; t++) {
      const o = (b * tokensPerBatch + t) * experts;
      if (score === "sigmoid") {
        for (let e = 0; e < experts; e++) out[t * experts + e] = 1 / (1 + Math.exp(-logits[o + e]));
      } else softmaxRow(logits, o, experts, out.subarray(t * experts, (t + 1) * experts));
    }
    batches.push(out);
  }
  return { experts, topK, tokensPerBatch, batches, switchAt };
}
