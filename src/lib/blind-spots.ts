/**
 * Three small batches that show what a load-balancing loss value cannot see,
 * built here once so that the load-balancing page shows them live and the
 * tests check the same numbers (formulas.md, LBL traps).
 */
import type { RouterLogits } from "./types.js";
import { logitsFromNested } from "./types.js";

/**
 * A loss below 1 with an idle expert: E = 3, k = 1; expert 2 is every
 * token's close runner-up and never chosen. f = (⅔, ⅓, 0), lbl.switch ≈ 0.83.
 */
export function belowOneWithIdleExpert(): { logits: RouterLogits; topK: number } {
  return {
    logits: logitsFromNested([
      [
        [1, -5, 0.99],
        [1, -5, 0.99],
        [-5, 1, 0.99],
      ],
    ]),
    topK: 1,
  };
}

/**
 * Complementary imbalance across layers: E = 4, k = 1; layer 0 uses only
 * experts 0–1, layer 1 only experts 2–3 (MaxVio 1 in each). Pooling the
 * layers' rows (Hugging Face) gives every expert a quarter of the tokens and,
 * by symmetry, a quarter of the probability: lbl.hf reads exactly k and its
 * gradient is exactly zero, while each layer's lbl.switch reads about 1.6
 * (transformers issue #28255).
 */
export function complementaryLayers(tokensPerPattern = 4): { logits: RouterLogits; topK: number } {
  const a = [3, 0, -3, -3];
  const b = [0, 3, -3, -3];
  const layer0: number[][] = [];
  const layer1: number[][] = [];
  for (let i = 0; i < tokensPerPattern; i++) {
    layer0.push(a, b);
    // The mirror image: experts 2–3 play the roles of 0–1.
    layer1.push([a[2], a[3], a[0], a[1]], [b[2], b[3], b[0], b[1]]);
  }
  return { logits: logitsFromNested([layer0, layer1]), topK: 1 };
}

/** Every logit equal: p uniform, the tie rule sends every token to experts 0…k−1. */
export function allEqual(layers: number, tokens: number, experts: number): RouterLogits {
  return { data: new Float64Array(layers * tokens * experts).fill(0.5), layers, tokens, experts };
}
