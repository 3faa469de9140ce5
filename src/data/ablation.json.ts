// Framework data loader: the four OLMoE-mini runs' training logs (data/logs)
// and held-out metrics (data/metrics), for the ablation page. Checkpoints not
// trained yet are listed as missing, so the page can say so.
import { existsSync, readFileSync } from "node:fs";

const strategies = ["micro", "global", "loss-free", "none"];
const root = new URL("../../data/", import.meta.url);
const round = (v: number) => Math.round(v * 1e4) / 1e4;
const scalars = ["ce", "lbl_switch", "lbl_sequence", "lbl_global", "z_olmoe", "max_vio_global", "max_vio_micro"] as const;

const runs: Record<string, unknown> = {};
const missing: string[] = [];
for (const strategy of strategies) {
  const log = new URL(`logs/${strategy}.jsonl`, root);
  const metrics = new URL(`metrics/${strategy}.json`, root);
  if (!existsSync(log) || !existsSync(metrics)) {
    missing.push(strategy);
    continue;
  }
  const steps = readFileSync(log, "utf8").trim().split("\n").map((line) => JSON.parse(line));
  runs[strategy] = {
    curve: steps.filter((s, i) => i % 2 === 0 || i === steps.length - 1).map((s) => Object.fromEntries([["step", s.step], ["tokens", s.tokens], ...scalars.map((k) => [k, round(s[k])])])),
    finalLoad: steps.filter((s) => s.load).at(-1)?.load,
    metrics: JSON.parse(readFileSync(metrics, "utf8")),
  };
}
process.stdout.write(JSON.stringify({ strategies, runs, missing }));
