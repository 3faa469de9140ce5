/**
 * A clearly labelled generator of synthetic router logits, for pages that
 * explain an idea before (or besides) the real OLMoE-mini logits: each expert
 * has a popularity, each domain (code, prose) prefers its own experts, and
 * every token adds Gaussian noise. Same seed, same logits.
 */
import { normalGenerator, shuffle, uniformGenerator } from "./random.js";
import type { RouterLogits } from "./types.js";

export type Domain = "code" | "prose";

export interface SyntheticOptions {
  layers?: number;
  experts: number;
  /** Domain of each sequence, in batch order. */
  domains: readonly Domain[];
  tokensPerSequence: number;
  /** How strongly each domain prefers its own experts (0: not at all). */
  specialization?: number;
  /** Spread of the experts' popularity (0: every expert equally liked). */
  popularity?: number;
  /** Token-level noise, standard deviation. */
  noise?: number;
  /** Logits are divided by it: below 1 sharpens the router, above 1 flattens it. */
  temperature?: number;
  seed?: number;
}

export interface SyntheticBatch {
  logits: RouterLogits;
  sequenceLengths: number[];
  domains: Domain[];
}

export function syntheticBatch(options: SyntheticOptions): SyntheticBatch {
  const { experts, domains, tokensPerSequence } = options;
  const layers = options.layers ?? 1;
  const specialization = options.specialization ?? 1.5;
  const popularity = options.popularity ?? 0.3;
  const noise = options.noise ?? 1;
  const temperature = options.temperature ?? 1;
  const seed = options.seed ?? 1;
  const normal = normalGenerator(seed);
  const uniform = uniformGenerator(seed ^ 0x5bd1e995);
  const tokens = domains.length * tokensPerSequence;
  const data = new Float32Array(layers * tokens * experts);
  for (let l = 0; l < layers; l++) {
    const liked = Array.from({ length: experts }, () => popularity * normal());
    // Half of the experts lean to code, half to prose, in a random arrangement per layer.
    const leansToCode = new Array<boolean>(experts);
    shuffle(
      Array.from({ length: experts }, (_, e) => e),
      uniform,
    ).forEach((e, i) => (leansToCode[e] = i < experts / 2));
    for (let s = 0; s < domains.length; s++) {
      const sign = domains[s] === "code" ? 1 : -1;
      for (let t = 0; t < tokensPerSequence; t++) {
        const row = (l * tokens + s * tokensPerSequence + t) * experts;
        for (let e = 0; e < experts; e++) {
          const preference = (leansToCode[e] ? 1 : -1) * sign * specialization;
          data[row + e] = (liked[e] + preference + noise * normal()) / temperature;
        }
      }
    }
  }
  return {
    logits: { data, layers, tokens, experts },
    sequenceLengths: new Array(domains.length).fill(tokensPerSequence),
    domains: [...domains],
  };
}

/** Domains for `count` sequences with a share of code, either grouped (all code first) or interleaved. */
export function domainMix(
  count: number,
  codeShare: number,
  arrangement: "grouped" | "interleaved",
  seed = 7,
): Domain[] {
  const code = Math.round(count * codeShare);
  const domains: Domain[] = Array.from({ length: count }, (_, i) => (i < code ? "code" : "prose"));
  return arrangement === "grouped" ? domains : shuffle(domains, uniformGenerator(seed));
}
