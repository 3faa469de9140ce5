/** `max_vio.global`: Wang et al. (2024) on the whole batch's loads, averaged over layers. */
import { defineLoss } from "../descriptor.js";
import { globalPerLayer, maxVioSamplingFloor } from "../max-vio.js";
import { mean } from "../reduce.js";

export const maxVioGlobal = defineLoss({
  family: "max_vio",
  variant: "global",
  formula: String.raw`\frac{1}{L}\sum_l \frac{\max_e c_{l,e} - Tk/E}{Tk/E}`,
  units: "relative excess load of the busiest expert",
  balance: () => 0,
  note: (c) => {
    const floor = maxVioSamplingFloor(c.tokens, c.topK, c.experts);
    return `on ${c.tokens.toLocaleString("en")} tokens, where a uniform router reads ≈ ${floor.toFixed(floor < 0.1 ? 3 : 2)} by chance; total collapse: ${(c.experts / c.topK - 1).toFixed(2)}`;
  },
  value: (summary) => mean(globalPerLayer(summary)),
});
