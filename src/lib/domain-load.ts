/**
 * Expert load by domain: for each layer and each domain, the share of that
 * domain's routing slots that each expert received. A router that
 * specialises by domain shows different rows for code and for prose; a
 * domain-blind one shows the same row twice.
 */
import type { RoutingSummary } from "./summary.js";

export interface DomainLoad {
  /** (layer, domain) rows × experts, each row summing to 1 (0 for a domain with no sequence). */
  readonly shares: Float64Array;
  readonly rows: number;
  /** "L0 code", "L0 prose", … in row order. */
  readonly labels: string[];
}

/** `domains[s]` names sequence s's domain; `order` lists the domains in the rows' order. */
export function loadByDomain(
  summary: RoutingSummary,
  domains: readonly string[],
  order: readonly string[],
): DomainLoad {
  const { layers, experts } = summary;
  const sequences = summary.sequenceLengths.length;
  if (domains.length !== sequences) {
    throw new Error(`${domains.length} domain labels for ${sequences} sequences`);
  }
  const shares = new Float64Array(layers * order.length * experts);
  const labels: string[] = [];
  for (let l = 0; l < layers; l++) {
    order.forEach((domain, d) => {
      const row = (l * order.length + d) * experts;
      let total = 0;
      for (let s = 0; s < sequences; s++) {
        if (domains[s] !== domain) continue;
        for (let e = 0; e < experts; e++) {
          const c = summary.load[(l * sequences + s) * experts + e];
          shares[row + e] += c;
          total += c;
        }
      }
      if (total > 0) for (let e = 0; e < experts; e++) shares[row + e] /= total;
      labels.push(`L${l} ${domain}`);
    });
  }
  return { shares, rows: layers * order.length, labels };
}
