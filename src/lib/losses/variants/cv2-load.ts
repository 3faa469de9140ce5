/** `cv2.load`: Shazeer et al. (2017) on the counts `c[e]`: a diagnostic, not differentiable. */
import { loadPerLayer } from "../cv2.js";
import { defineLoss } from "../descriptor.js";
import { mean } from "../reduce.js";

export const cv2Load = defineLoss({
  family: "cv2",
  variant: "load",
  formula: String.raw`\frac{1}{L}\sum_l \frac{\operatorname{Var}_e c_{l,e}}{\big(\operatorname{Mean}_e c_{l,e}\big)^2}`,
  units: "dimensionless",
  balance: () => 0,
  note: () => "population variance",
  value: (summary) => mean(loadPerLayer(summary)),
});
