/** `cv2.importance`: Shazeer et al. (2017), `Var(I)/Mean(I)²` of `I[e] = Σ_t p[t][e]`, population variance. */
import { wholeBatch } from "../../batching.js";
import { groupTotals } from "../../summary.js";
import { importancePerLayer } from "../cv2.js";
import { defineLoss, type ScoreBlock } from "../descriptor.js";
import { mean } from "../reduce.js";

export const cv2Importance = defineLoss({
  family: "cv2",
  variant: "importance",
  formula: String.raw`\frac{1}{L}\sum_l \frac{\operatorname{Var}_e I_{l,e}}{\big(\operatorname{Mean}_e I_{l,e}\big)^2},\quad I_{l,e} = \sum_t p_{l,t,e}`,
  units: "dimensionless",
  balance: () => 0,
  note: () => "population variance",
  value: (summary) => mean(importancePerLayer(summary)),
  gradient: {
    kind: "weighted-scores",
    // cv² = E Σ I² / (Σ I)² − 1, and Σ_e I_e = T does not depend on x.
    *blocks(summary): Generator<ScoreBlock> {
      const { layers, experts } = summary;
      const all = wholeBatch(summary.sequenceLengths.length)[0];
      for (let layer = 0; layer < layers; layer++) {
        const importance = groupTotals(summary, layer, all).probSum;
        const total = importance.reduce((a, b) => a + b, 0);
        yield {
          layer,
          group: all,
          weights: importance.map((v) => (2 * experts * v) / (total * total)),
          scale: 1 / layers,
        };
      }
    },
  },
});
