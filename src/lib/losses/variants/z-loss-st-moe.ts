/** `z_loss.st_moe`: ST-MoE's router z-loss, the mean squared logsumexp over layers·tokens (ST-MoE, OpenMoE). */
import { defineLoss } from "../descriptor.js";
import { stMoe } from "../z-loss.js";

export const zLossStMoe = defineLoss({
  family: "z_loss",
  variant: "st_moe",
  formula: String.raw`\frac{1}{L T}\sum_{l,t} \Big(\log \sum_e e^{x_{l,t,e}}\Big)^2`,
  units: "nats²",
  balance: () => null,
  note: () => "mean lse², ÷ layers·tokens",
  value: (summary) => stMoe(summary),
  gradient: { kind: "squared-lse", scale: ({ layers, tokens }) => 1 / (layers * tokens) },
});
