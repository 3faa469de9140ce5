/**
 * How hard a loss pushes on routing: softmax ignores a shift of all of a
 * token's logits, so only the row-centred part of a gradient (each row minus
 * its mean over experts) can change which experts a token prefers. Its norm
 * compares the routing force of different losses on the same logits, e.g.
 * the z-loss against the LBL (formulas.md, z-loss: "what the z-loss does to
 * routing").
 */
import type { RouterLogits } from "../types.js";

/** ‖g − rowmean(g)‖₂ over every row of a layers × tokens × experts gradient. */
export function centeredNorm(gradient: ArrayLike<number>, shape: Pick<RouterLogits, "experts">): number {
  const { experts } = shape;
  let total = 0;
  for (let row = 0; row < gradient.length / experts; row++) {
    let mean = 0;
    for (let e = 0; e < experts; e++) mean += gradient[row * experts + e];
    mean /= experts;
    for (let e = 0; e < experts; e++) total += (gradient[row * experts + e] - mean) ** 2;
  }
  return Math.sqrt(total);
}
