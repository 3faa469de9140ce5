// Comparisons of trained OLMoE-mini arms for the ablation and z-loss pages.
// Every sentence that compares two arms is built here from a paired interval
// over seeds (statistics.ts), so no page can state a difference from two
// bare means: with one seed the sentence says the comparison is unresolved.
import { html } from "htl";
import {
  meanSd,
  pairedInterval,
  tInterval,
  verdict,
  type Interval,
  type MeanSd,
  type Verdict,
} from "../lib/statistics.js";

/** One trained run as the ablation data loader lists it (src/data/ablation.json.ts). */
export interface Run {
  run: string;
  arm: string;
  seed: number;
  config: Record<string, unknown> | null;
  metrics: {
    perplexity: { code: number; prose: number };
    maxVio: number;
    bits: number;
    deadExperts: number;
    router: { entropy_mean: number; logit_max: number; lse_mean: number; lse_p99: number } | null;
  };
  bootstrap: Record<"code" | "prose", { low: number; high: number; documents: number }> | null;
  curve: Record<string, number>[];
}

/** What a comparison measures on a run, and how a difference of it reads. */
export interface Measure {
  key: string;
  label: string;
  value: (run: Run) => number | undefined;
  /** How a difference `arm − reference` is shown. */
  format: (difference: number) => string;
}

const percent = (d: number) => `${d >= 0 ? "+" : "−"}${Math.abs(100 * (Math.exp(d) - 1)).toFixed(2)} %`;
const plain = (digits: number) => (d: number) => `${d >= 0 ? "+" : "−"}${Math.abs(d).toFixed(digits)}`;

/**
 * Perplexities are compared as differences of their logarithms (the held-out
 * cross-entropy in nats), shown as a relative change of perplexity.
 */
export const measures: Record<string, Measure> = {
  pplCode: {
    key: "pplCode",
    label: "held-out perplexity on code",
    value: (r) => Math.log(r.metrics.perplexity.code),
    format: percent,
  },
  pplProse: {
    key: "pplProse",
    label: "held-out perplexity on prose",
    value: (r) => Math.log(r.metrics.perplexity.prose),
    format: percent,
  },
  maxVio: { key: "maxVio", label: "held-out MaxVio", value: (r) => r.metrics.maxVio, format: plain(3) },
  bits: {
    key: "bits",
    label: "specialisation I(domain; expert)",
    value: (r) => r.metrics.bits,
    format: (d) => `${plain(3)(d)} bits`,
  },
  entropy: {
    key: "entropy",
    label: "held-out router entropy",
    value: (r) => r.metrics.router?.entropy_mean,
    format: (d) => `${plain(3)(d)} nats`,
  },
  logitMax: {
    key: "logitMax",
    label: "largest held-out router logit",
    value: (r) => r.metrics.router?.logit_max,
    format: plain(2),
  },
};

/** Values of a measure per seed for one arm. */
export function bySeed(runs: readonly Run[], arm: string, measure: Measure): Map<number, number> {
  const out = new Map<number, number>();
  for (const r of runs) {
    if (r.arm !== arm) continue;
    const v = measure.value(r);
    if (v !== undefined && Number.isFinite(v)) out.set(r.seed, v);
  }
  return out;
}

export function armSummary(runs: readonly Run[], arm: string, measure: Measure): MeanSd & { values: number[] } {
  const values = [...bySeed(runs, arm, measure).values()];
  return { ...meanSd(values), values };
}

export interface Comparison {
  arm: string;
  reference: string;
  measure: Measure;
  interval: Interval & { seeds: number[] };
  /** The paper's claimed direction of `arm − reference`, if a paper claims one. */
  expected?: "lower" | "higher";
  claim?: string;
  verdict: Verdict | "a difference resolved at this scale" | "no difference resolved at this scale";
}

export function compare(
  runs: readonly Run[],
  arm: string,
  reference: string,
  measure: Measure,
  expected?: "lower" | "higher",
  claim?: string,
): Comparison {
  const interval = pairedInterval(bySeed(runs, arm, measure), bySeed(runs, reference, measure));
  const judged = expected
    ? verdict(interval, expected)
    : interval.low !== null && interval.high !== null && (interval.low > 0 || interval.high < 0)
      ? "a difference resolved at this scale"
      : "no difference resolved at this scale";
  return { arm, reference, measure, interval, expected, claim, verdict: judged };
}

/** One comparison a page states: `arm − reference` on a measure, with the paper's claim when there is one. */
export interface ClaimSpec {
  readonly arm: string;
  readonly reference: string;
  readonly measure: string;
  readonly expected?: "lower" | "higher";
  readonly claim?: string;
}

const qiu = "global-batch LBL lowers perplexity (Qiu et al. 2025)";
const wangPpl = "loss-free balancing lowers perplexity against the auxiliary loss (Wang et al. 2024)";
const collapse = "routing without balancing ends less balanced (Shazeer et al. 2017; Fedus et al. 2022)";

/**
 * The papers' claims the ablation page checks, and the differences it reports
 * without a claim; the model card prints the same list (data/recipe/evidence-table.ts).
 */
export const paperClaims: readonly ClaimSpec[] = [
  // Qiu et al. 2025: global-batch balance lets experts specialise, and lowers perplexity
  {
    arm: "global",
    reference: "micro",
    measure: "bits",
    expected: "higher",
    claim: "global-batch LBL gives more domain specialisation than micro-batch LBL (Qiu et al. 2025)",
  },
  { arm: "global", reference: "micro", measure: "pplCode", expected: "lower", claim: qiu },
  { arm: "global", reference: "micro", measure: "pplProse", expected: "lower", claim: qiu },
  // Wang et al. 2024: loss-free balancing balances better and lowers perplexity than an auxiliary loss
  {
    arm: "loss-free",
    reference: "micro",
    measure: "maxVio",
    expected: "lower",
    claim: "loss-free balancing balances better than the auxiliary loss (Wang et al. 2024)",
  },
  { arm: "loss-free", reference: "micro", measure: "pplCode", expected: "lower", claim: wangPpl },
  { arm: "loss-free", reference: "micro", measure: "pplProse", expected: "lower", claim: wangPpl },
  { arm: "loss-free", reference: "global", measure: "pplCode" },
  { arm: "loss-free", reference: "global", measure: "maxVio" },
  // Shazeer et al. 2017 onwards: without balancing, routing collapses
  ...["micro", "global", "loss-free"].map((reference) => ({
    arm: "none",
    reference,
    measure: "maxVio",
    expected: "higher" as const,
    claim: collapse,
  })),
  ...["micro", "global"].map((reference) => ({ arm: "none", reference, measure: "pplCode" })),
];

/** The z-loss arms against `global` (the z-loss page and the model card). */
export const zLossClaims: readonly ClaimSpec[] = [
  { arm: "global-z-no-divk", reference: "global", measure: "pplCode" },
  { arm: "global-no-z", reference: "global", measure: "pplCode" },
  { arm: "global-z-no-divk", reference: "global", measure: "logitMax" },
];

/** Each spec compared over the runs' paired seeds. */
export function compareClaims(runs: readonly Run[], specs: readonly ClaimSpec[]): Comparison[] {
  return specs.map((s) => {
    const measure = measures[s.measure];
    if (!measure) throw new Error(`no measure named ${s.measure}`);
    return compare(runs, s.arm, s.reference, measure, s.expected, s.claim);
  });
}

/** "+1.2 % [−0.5 %, +2.9 %] over 3 paired seeds", or why there is no interval. */
export function describeInterval(c: Comparison): string {
  const { interval, measure } = c;
  if (interval.n === 0) return "no seed trained for both arms yet";
  if (interval.low === null || interval.high === null)
    return `${measure.format(interval.mean)} on the one seed both arms have (no interval from one seed)`;
  return `${measure.format(interval.mean)} [95 % interval ${measure.format(interval.low)}, ${measure.format(interval.high)}] over ${interval.n} paired seeds`;
}

/** The sentence for one comparison: the measured difference with its interval, then what it says. */
export function comparisonSentence(c: Comparison): HTMLElement {
  const what = html`<code>${c.arm}</code> against <code>${c.reference}</code>, ${c.measure.label}: <span data-testid="interval">${describeInterval(c)}</span>`;
  const reading = c.claim
    ? html` — the paper's claim that ${c.claim} is <strong data-testid="verdict">${c.verdict === "consistent with the paper" ? "consistent with this run" : c.verdict === "contradicts the paper" ? "contradicted here" : "not resolved at this scale"}</strong>.`
    : html` — <strong data-testid="verdict">${c.verdict}</strong>.`;
  return html`<li data-testid="comparison">${what}${reading}</li>` as HTMLElement;
}

/** Mean and t interval over seeds of one arm, for a figure's interval bar. */
export function seedInterval(runs: readonly Run[], arm: string, measure: Measure): Interval {
  return tInterval([...bySeed(runs, arm, measure).values()]);
}

/** A moving average over a series (centred where it can be), for noisy per-step curves. */
export function movingAverage(values: readonly number[], window: number): number[] {
  const half = Math.floor(window / 2);
  return values.map((_, i) => {
    const from = Math.max(0, i - half);
    const to = Math.min(values.length, i + half + 1);
    let sum = 0;
    for (let j = from; j < to; j++) sum += values[j];
    return sum / (to - from);
  });
}

/**
 * Per-seed differences of a logged quantity between two arms over training
 * (the arms share each seed's batches, so step by step the difference is
 * paired), smoothed by a moving average.
 */
export function pairedCurves(
  runs: readonly Run[],
  arm: string,
  reference: string,
  key: string,
  window = 9,
): { seed: number; tokens: number; difference: number }[] {
  const out: { seed: number; tokens: number; difference: number }[] = [];
  for (const a of runs.filter((r) => r.arm === arm)) {
    const b = runs.find((r) => r.arm === reference && r.seed === a.seed);
    if (!b) continue;
    const byStep = new Map(b.curve.map((p) => [p.step, p[key]]));
    const points = a.curve.filter((p) => Number.isFinite(p[key]) && Number.isFinite(byStep.get(p.step)));
    const smoothed = movingAverage(
      points.map((p) => p[key] - byStep.get(p.step)!),
      window,
    );
    points.forEach((p, i) => out.push({ seed: a.seed, tokens: p.tokens, difference: smoothed[i] }));
  }
  return out;
}

/** One point of a trade-off curve: a trained arm at seed 1, with its setting as a label. */
export interface SweepPoint {
  arm: string;
  /** "α=0.003", "sign u=0.0001", or the arm's name when it has no config. */
  setting: string;
  maxVio: number;
  /** Geometric mean of the code and prose perplexities. */
  ppl: number;
  bits: number;
}

/**
 * The arms of one sweep (names starting with `prefix`) and its reference arm,
 * at seed 1, as points of Wang et al.'s MaxVio–perplexity trade-off. One seed
 * per point: the page says to read the curve's shape, not neighbouring gaps.
 */
export function sweepPoints(runs: readonly Run[], prefix: string, reference: string): SweepPoint[] {
  return runs
    .filter((r) => r.seed === 1 && (r.arm.startsWith(prefix) || r.arm === reference))
    .map((r) => {
      const config = r.config as { alpha?: number; bias_rule?: string | null; bias_rate?: number } | null;
      const setting = !config
        ? r.arm
        : config.bias_rule
          ? `${config.bias_rule} u=${config.bias_rate}`
          : `α=${config.alpha}`;
      return {
        arm: r.arm,
        setting,
        maxVio: r.metrics.maxVio,
        ppl: Math.sqrt(r.metrics.perplexity.code * r.metrics.perplexity.prose),
        bits: r.metrics.bits,
      };
    })
    .sort((a, b) => a.maxVio - b.maxVio);
}

/**
 * Specialisation against the number of sequences per `f` group (Qiu et al.'s
 * "Balance BSZ"), at seed 1: the LBL arms that differ from the default only in
 * their group (α = 0.01, β = 0.001 with the OLMoE ÷k, no bias), by group size.
 */
export function groupPoints(runs: readonly Run[]): { arm: string; group: number; bits: number; maxVio: number }[] {
  return runs
    .filter((r) => {
      const c = r.config as {
        alpha?: number;
        beta?: number;
        z_norm?: string;
        bias_rule?: string | null;
        group?: number;
      } | null;
      return (
        r.seed === 1 &&
        !!c &&
        c.alpha === 0.01 &&
        c.beta === 0.001 &&
        c.z_norm === "olmoe" &&
        !c.bias_rule &&
        typeof c.group === "number"
      );
    })
    .map((r) => ({
      arm: r.arm,
      group: (r.config as { group: number }).group,
      bits: r.metrics.bits,
      maxVio: r.metrics.maxVio,
    }))
    .sort((a, b) => a.group - b.group);
}
