/**
 * The rich-get-richer loop of an unbalanced router, as a small simulation:
 * experts that receive more tokens than their share get better, so the
 * router prefers them more (Shazeer et al. 2017 describe exactly this
 * self-reinforcing imbalance). Each expert's preference `s[e]` is shared by
 * all tokens, which add noise: `x[t][e] = s[e] + noise·N(0,1)`.
 * With `alpha > 0`, a step of the Switch LBL's analytic gradient pushes back.
 */
import { lossGradient } from "./losses/gradients.js";
import { maxVioOfLoad } from "./losses/max-vio.js";
import { normalGenerator } from "./random.js";
import { summarize } from "./summary.js";

export interface CollapseOptions {
  experts: number;
  topK: number;
  tokens: number;
  steps: number;
  /** How fast a busy expert becomes more attractive. */
  feedback: number;
  /** LBL coefficient; 0 for no balancing. */
  alpha: number;
  noise?: number;
  /** Step size of the LBL's gradient on the preferences. */
  routerLearningRate?: number;
  seed?: number;
}

export interface CollapseTrace {
  /** Fraction of routing slots per expert at each step: steps × experts. */
  share: number[][];
  maxVio: number[];
  /** Experts that received no token in the last step. */
  deadExperts: number;
}

export function simulateCollapse(options: CollapseOptions): CollapseTrace {
  const { experts, topK, tokens, steps, feedback, alpha } = options;
  const noise = options.noise ?? 1;
  const learningRate = options.routerLearningRate ?? 100;
  const normal = normalGenerator(options.seed ?? 1);
  const preference = new Float64Array(experts).map(() => 0.1 * normal());
  const share: number[][] = [];
  const maxVio: number[] = [];
  let lastLoad: Float64Array = new Float64Array(experts);
  for (let step = 0; step < steps; step++) {
    const data = new Float64Array(tokens * experts);
    for (let i = 0; i < data.length; i++) data[i] = preference[i % experts] + noise * normal();
    const logits = { data, layers: 1, tokens, experts };
    const summary = summarize(logits, topK);
    lastLoad = summary.load;
    share.push(Array.from(summary.load, (c) => c / (tokens * topK)));
    maxVio.push(maxVioOfLoad(summary.load, tokens, topK));
    for (let e = 0; e < experts; e++)
      preference[e] += feedback * (summary.load[e] / (tokens * topK) - 1 / experts) * experts * 0.1;
    if (alpha > 0) {
      // The LBL's gradient on the shared preference is the sum over tokens.
      const gradient = lossGradient(logits, "lbl.switch", { topK, summary }); // the step's summary, not a second pass
      for (let t = 0; t < tokens; t++)
        for (let e = 0; e < experts; e++) preference[e] -= alpha * learningRate * gradient[t * experts + e];
    }
  }
  return { share, maxVio, deadExperts: lastLoad.filter((c) => c === 0).length };
}
