/**
 * Statistics for comparing trained runs, so that no sentence on a page rests
 * on a bare comparison of two means:
 * - `meanSd`: mean and sample standard deviation over seeds;
 * - `pairedInterval`: the mean of per-seed differences between two arms that
 *   share each seed's initialisation and data order, with a 95 % Student-t
 *   interval over seeds (none from a single seed);
 * - `bootstrapPerplexity`: a run's own uncertainty from the finite held-out
 *   set, resampling held-out documents;
 * - `verdict`: what an interval says about a paper's claimed direction.
 */
import { uniformGenerator } from "./random.js";

export interface MeanSd {
  readonly n: number;
  readonly mean: number;
  /** Sample standard deviation (n − 1); NaN for one value. */
  readonly sd: number;
}

export function meanSd(values: readonly number[]): MeanSd {
  const n = values.length;
  if (n === 0) return { n, mean: NaN, sd: NaN };
  const mean = values.reduce((a, b) => a + b, 0) / n;
  const sd = n < 2 ? NaN : Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1));
  return { n, mean, sd };
}

export interface Interval extends MeanSd {
  /** 95 % interval of the mean; null when fewer than two values allow none. */
  readonly low: number | null;
  readonly high: number | null;
}

/** Mean with a two-sided Student-t interval at `level` (0.95 by default). */
export function tInterval(values: readonly number[], level = 0.95): Interval {
  const summary = meanSd(values);
  if (summary.n < 2) return { ...summary, low: null, high: null };
  const half = (studentTQuantile(0.5 + level / 2, summary.n - 1) * summary.sd) / Math.sqrt(summary.n);
  return { ...summary, low: summary.mean - half, high: summary.mean + half };
}

/**
 * Per-seed differences `a[seed] − b[seed]` over the seeds both arms have, with
 * their t interval. Seeds are paired: within a seed both arms started from the
 * same weights and saw the same batches, so the difference removes the seed's
 * own luck.
 */
export function pairedInterval(
  a: ReadonlyMap<number, number>,
  b: ReadonlyMap<number, number>,
  level = 0.95,
): Interval & { seeds: number[] } {
  const seeds = [...a.keys()].filter((seed) => b.has(seed)).sort((x, y) => x - y);
  return {
    ...tInterval(
      seeds.map((seed) => a.get(seed)! - b.get(seed)!),
      level,
    ),
    seeds,
  };
}

export type Verdict = "consistent with the paper" | "contradicts the paper" | "not resolved at this scale";

/**
 * What an interval of `measured − reference` says about a claim that the
 * difference is negative (`expected: "lower"`) or positive (`"higher"`):
 * consistent when the whole interval lies on the claimed side of zero,
 * contradicting when it lies wholly on the other side, unresolved otherwise
 * (including when there is no interval: one seed).
 */
export function verdict(interval: Pick<Interval, "low" | "high">, expected: "lower" | "higher"): Verdict {
  const { low, high } = interval;
  if (low === null || high === null) return "not resolved at this scale";
  const below = high < 0;
  const above = low > 0;
  if ((expected === "lower" && below) || (expected === "higher" && above)) return "consistent with the paper";
  if ((expected === "lower" && above) || (expected === "higher" && below)) return "contradicts the paper";
  return "not resolved at this scale";
}

export interface HeldOutDocuments {
  /** Summed negative log-likelihood (nats) per document. */
  readonly nll: readonly number[];
  readonly tokens: readonly number[];
  /** 0 code, 1 prose. */
  readonly domain: readonly number[];
}

/**
 * Perplexity over one domain's held-out documents with a percentile bootstrap
 * interval: documents are drawn with replacement (a document's tokens stay
 * together, since they are not independent), `resamples` times, from a seeded
 * generator so the page and the tests see the same interval.
 */
export function bootstrapPerplexity(
  documents: HeldOutDocuments,
  domain: number,
  { resamples = 2000, level = 0.95, seed = 1 } = {},
): { perplexity: number; low: number; high: number; documents: number } {
  const picked = documents.domain.flatMap((d, i) => (d === domain && documents.tokens[i] > 0 ? [i] : []));
  if (picked.length === 0) throw new Error(`no held-out document of domain ${domain}`);
  const nll = picked.map((i) => documents.nll[i]);
  const tokens = picked.map((i) => documents.tokens[i]);
  const perplexity = Math.exp(nll.reduce((a, b) => a + b, 0) / tokens.reduce((a, b) => a + b, 0));
  const uniform = uniformGenerator(seed);
  const draws = new Float64Array(resamples);
  for (let r = 0; r < resamples; r++) {
    let sumNll = 0;
    let sumTokens = 0;
    for (let j = 0; j < picked.length; j++) {
      const i = Math.floor(uniform() * picked.length);
      sumNll += nll[i];
      sumTokens += tokens[i];
    }
    draws[r] = Math.exp(sumNll / sumTokens);
  }
  draws.sort();
  return {
    perplexity,
    low: quantileSorted(draws, (1 - level) / 2),
    high: quantileSorted(draws, (1 + level) / 2),
    documents: picked.length,
  };
}

/** Linear interpolation between order statistics (numpy's default, type 7). */
export function quantileSorted(sorted: ArrayLike<number>, p: number): number {
  const position = (sorted.length - 1) * p;
  const below = Math.floor(position);
  const above = Math.min(sorted.length - 1, below + 1);
  return sorted[below] + (sorted[above] - sorted[below]) * (position - below);
}

/** The p-quantile of Student's t with `df` degrees of freedom (bisection on the CDF). */
export function studentTQuantile(p: number, df: number): number {
  if (!(p > 0 && p < 1) || !(df > 0)) throw new RangeError(`studentTQuantile(${p}, ${df})`);
  if (p === 0.5) return 0;
  if (p < 0.5) return -studentTQuantile(1 - p, df);
  let low = 0;
  let high = 1;
  while (studentTCdf(high, df) < p) high *= 2;
  for (let i = 0; i < 200 && high - low > 1e-12 * high; i++) {
    const mid = (low + high) / 2;
    if (studentTCdf(mid, df) < p) low = mid;
    else high = mid;
  }
  return (low + high) / 2;
}

/** Student's t CDF through the regularised incomplete beta function. */
export function studentTCdf(t: number, df: number): number {
  const x = df / (df + t * t);
  const tail = 0.5 * regularizedBeta(x, df / 2, 0.5);
  return t >= 0 ? 1 - tail : tail;
}

/** I_x(a, b) by its continued fraction (Lentz's method), with the symmetry that keeps it convergent. */
function regularizedBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  if (x > (a + 1) / (a + b + 2)) return 1 - regularizedBeta(1 - x, b, a);
  const front = Math.exp(logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log(1 - x));
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let f = d;
  for (let m = 1; m <= 500; m++) {
    const m2 = 2 * m;
    let numerator = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2));
    d = 1 + numerator * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + numerator / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    f *= d * c;
    numerator = -((a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1));
    d = 1 + numerator * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + numerator / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = d * c;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-15) break;
  }
  return (front * f) / a;
}

/** ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9). */
function logGamma(x: number): number {
  const g = 7;
  const coefficients = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  x -= 1;
  let sum = coefficients[0];
  for (let i = 1; i < g + 2; i++) sum += coefficients[i] / (x + i);
  const t = x + g + 0.5;
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(sum);
}
