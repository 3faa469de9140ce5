/**
 * Routing consistency: the same text routed twice with a tiny numeric
 * difference between the runs (another backend, the router's input rounded to
 * bfloat16, or a perturbation ε of the router's input), and how far the two
 * runs' routes and next-token log-probabilities drift apart. Then replay: the
 * second run is forced onto the first run's route (routing replay, "R3" in
 * reinforcement-learning frameworks for MoEs, where the inference engine's
 * route is replayed in the trainer), which removes the mismatch that came from
 * routing and leaves only the gates' numeric difference.
 */
import { chosenRoute, type Forward, type ForwardOutput } from "./counterfactual.js";
import { hashedNoise, type RouteOverrides } from "./route-overrides.js";

/** The difference between the two runs. */
export type Perturbation =
  | { kind: "bf16" }
  | { kind: "noise"; epsilon: number }
  /** The second run on another backend (the caller passes its Forward), no numeric change of ours. */
  | { kind: "backend" };

export function perturbationOverrides(
  perturbation: Perturbation,
  dims: { layers: number; batch: number; seq: number; width: number },
): RouteOverrides {
  switch (perturbation.kind) {
    case "bf16":
      return { routerBf16: true };
    case "noise": {
      const { layers: L, batch: B, seq: S, width: d } = dims;
      return { routerInputNoise: { data: hashedNoise(L * B * S * d, perturbation.epsilon), dims: [L, B, S, d] } };
    }
    case "backend":
      return {};
  }
}

export interface RunComparison {
  /** Per layer: the share of tokens whose set of k experts differs between the runs. */
  flipRateByLayer: number[];
  /** The share of tokens with a different set in at least one layer. */
  anyLayerFlipped: number;
  /** Mean and largest |Δ log p(next token)| over every position that has a next token. */
  meanLogProbMismatch: number;
  maxLogProbMismatch: number;
  /**
   * Schulman's k3 estimator of KL(run A ‖ run B) at the text's tokens: the
   * mean of r − 1 − log r with r = p_B / p_A (joschu.net/blog/kl-approx.html);
   * RL frameworks log it as the rollout–training mismatch (verl's
   * `mismatch_k3_kl`, AReaL #1207's `rollout_train_k3_kl`).
   */
  k3KL: number;
  /** The share of tokens with |Δ log p| > ln 2 (their probability halves or doubles): AReaL #1207's `extreme_frac_tau2`. */
  extremeShare: number;
}

/** Compares two runs' routes ([L, B, S, k], slot order ignored) and next-token log-probabilities. */
export function compareRuns(
  routeA: Int32Array,
  routeB: Int32Array,
  a: ForwardOutput,
  b: ForwardOutput,
  topK: number,
): RunComparison {
  const [L, B, S] = a.dims;
  const N = B * S;
  const flippedToken = new Uint8Array(N);
  const flipRateByLayer = Array.from({ length: L }, (_, l) => {
    let flips = 0;
    for (let n = 0; n < N; n++) {
      const offset = (l * N + n) * topK;
      const setA = new Set(routeA.subarray(offset, offset + topK));
      if (routeB.subarray(offset, offset + topK).some((e) => !setA.has(e))) {
        flips++;
        flippedToken[n] = 1;
      }
    }
    return flips / N;
  });
  let sum = 0,
    max = 0,
    k3 = 0,
    extreme = 0,
    count = 0;
  for (let n = 0; n < N; n++) {
    const pa = a.next.logProbs[n],
      pb = b.next.logProbs[n];
    if (Number.isNaN(pa) || Number.isNaN(pb)) continue; // a sequence's last position
    const logRatio = pb - pa;
    const d = Math.abs(logRatio);
    sum += d;
    max = Math.max(max, d);
    k3 += Math.expm1(logRatio) - logRatio;
    if (d > Math.LN2) extreme++;
    count++;
  }
  return {
    flipRateByLayer,
    anyLayerFlipped: flippedToken.reduce((s, v) => s + v, 0) / N,
    meanLogProbMismatch: count ? sum / count : 0,
    maxLogProbMismatch: max,
    k3KL: count ? k3 / count : 0,
    extremeShare: count ? extreme / count : 0,
  };
}

export interface ConsistencyResult {
  perturbation: Perturbation;
  /** Run A (reference) against run B (perturbed), each on its own route. */
  free: RunComparison;
  /** Run A against run B forced onto A's route (replay). */
  replayed: RunComparison;
  tokens: number;
}

/**
 * Run B under `perturb`, then again with A's route replayed, each compared
 * with run A. Every slot of the replayed run is forced, so the route it used
 * is A's: its flips are zero by construction, and what mismatch remains comes
 * from the gates (recomputed from B's own router logits).
 */
async function againstRunA(
  a: ForwardOutput,
  routeA: Int32Array,
  forwardB: Forward,
  sequences: readonly (readonly number[])[],
  perturb: RouteOverrides,
  topK: number,
): Promise<{ free: RunComparison; replayed: RunComparison }> {
  const b = await forwardB(sequences, perturb);
  const [L, B, S] = a.dims;
  const replay = await forwardB(sequences, { ...perturb, forcedExperts: { data: routeA, dims: [L, B, S, topK] } });
  return {
    free: compareRuns(routeA, chosenRoute(b, topK).data, a, b, topK),
    replayed: compareRuns(routeA, routeA, a, replay, topK),
  };
}

/**
 * Routes `sequences` (equal lengths) with `forwardA`, then with `forwardB`
 * under the perturbation, then with `forwardB` under the perturbation and
 * A's route replayed. For "bf16" and "noise" both forwards are usually the
 * same backend; for "backend" they differ.
 */
export async function routingConsistency(
  forwardA: Forward,
  forwardB: Forward,
  sequences: readonly (readonly number[])[],
  perturbation: Perturbation,
  topK: number,
  width: number,
): Promise<ConsistencyResult> {
  const a = await forwardA(sequences);
  const [L, B, S] = a.dims;
  const perturb = perturbationOverrides(perturbation, { layers: L, batch: B, seq: S, width });
  const compared = await againstRunA(a, chosenRoute(a, topK).data, forwardB, sequences, perturb, topK);
  return { perturbation, ...compared, tokens: B * S };
}

/** One ε of a sweep: the comparison without and with replay. */
export interface SweepPoint {
  epsilon: number;
  free: RunComparison;
  replayed: RunComparison;
}

/**
 * Routing consistency over a range of perturbation sizes ε (one run each,
 * the same text): how flips grow with ε and with depth. The plain run is
 * shared, so each ε costs two forward passes.
 */
export async function consistencySweep(
  forward: Forward,
  sequences: readonly (readonly number[])[],
  epsilons: readonly number[],
  topK: number,
  width: number,
  onProgress: (done: number, total: number) => void = () => {},
): Promise<SweepPoint[]> {
  const a = await forward(sequences);
  const [L, B, S] = a.dims;
  const routeA = chosenRoute(a, topK).data;
  const points: SweepPoint[] = [];
  for (const [i, epsilon] of epsilons.entries()) {
    const perturb = perturbationOverrides({ kind: "noise", epsilon }, { layers: L, batch: B, seq: S, width });
    points.push({ epsilon, ...(await againstRunA(a, routeA, forward, sequences, perturb, topK)) });
    onProgress(i + 1, epsilons.length);
  }
  return points;
}
