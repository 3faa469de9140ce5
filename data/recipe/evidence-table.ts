/**
 * Prints, as Markdown for the model card, what the trained arms in data/metrics
 * show: each arm's seeds with mean ± sd, and the comparisons the ablation page
 * states, each with its paired interval and the verdict the interval gives.
 * It reads the ablation page's own data loader and uses the page's own
 * comparison code, so the card and the page cannot disagree.
 *
 * usage: node --import tsx data/recipe/evidence-table.ts
 */
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import {
  armSummary,
  compareClaims,
  describeInterval,
  measures,
  paperClaims,
  zLossClaims,
  type Run,
} from "../../src/components/evidence.js";

const loader = fileURLToPath(new URL("../../src/data/ablation.json.ts", import.meta.url));
const { runs } = JSON.parse(
  execFileSync(process.execPath, ["--import", "tsx", loader], { encoding: "utf8", maxBuffer: 1 << 28 }),
) as { runs: Run[] };
const arms = [...new Set(runs.map((r) => r.arm))];

console.log("| arm | seeds | ppl code | ppl prose | MaxVio (held-out) | I(domain; expert), bits |");
console.log("|---|---|---|---|---|---|");
for (const arm of arms) {
  const seeds = runs
    .filter((r) => r.arm === arm)
    .map((r) => r.seed)
    .sort();
  const ppl = (m: typeof measures.pplCode) => {
    const s = armSummary(runs, arm, m);
    return `${Math.exp(s.mean).toFixed(2)}${s.n > 1 ? ` ± ${(Math.exp(s.mean) * s.sd).toFixed(2)}` : ""}`;
  };
  const plain = (m: typeof measures.maxVio) => {
    const s = armSummary(runs, arm, m);
    return `${s.mean.toFixed(3)}${s.n > 1 ? ` ± ${s.sd.toFixed(3)}` : ""}`;
  };
  console.log(
    `| \`${arm}\` | ${seeds.join(", ")} | ${ppl(measures.pplCode)} | ${ppl(measures.pplProse)} | ${plain(measures.maxVio)} | ${plain(measures.bits)} |`,
  );
}
console.log("");
const claims = compareClaims(runs, [...paperClaims, ...zLossClaims]);
for (const c of claims) {
  if (c.interval.n === 0) continue;
  console.log(
    `- \`${c.arm}\` − \`${c.reference}\`, ${c.measure.label}: ${describeInterval(c)}${c.claim ? `; claim "${c.claim}": **${c.verdict}**` : `: **${c.verdict}**`}.`,
  );
}
