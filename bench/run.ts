/**
 * `npm run bench`: runs every benchmark, prints one table and writes
 * `bench/results/latest.json`. Timings are noisy on shared machines: compare
 * ratios measured within one run, never numbers across runs.
 * `npm run bench -- loss` runs only the suites whose name contains "loss".
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { benchLossEngine } from "./loss-engine.js";
import { benchLiveTraining } from "./live-training.js";
import { benchModel } from "./model.js";
import { benchYourLogits } from "./your-logits.js";
import { benchRouters } from "./routers.js";
import { benchPages } from "./pages.js";
import { benchCounterfactual } from "./counterfactual.js";
import type { BenchRow } from "./timing.js";

const suites: [string, () => Promise<BenchRow[]>][] = [
  ["loss engine", benchLossEngine],
  ["live training", benchLiveTraining],
  ["OLMoE-mini", benchModel],
  ["your logits", benchYourLogits],
  ["production routers", benchRouters],
  ["pages", benchPages],
  ["forced routes", benchCounterfactual],
];

const filter = process.argv[2];
const rows: BenchRow[] = [];
// The machine may be shared: its load before and after says how far to trust this run's absolute times.
const loadBefore = loadavg()[0];
for (const [name, run] of suites) {
  if (filter && !name.includes(filter)) continue;
  process.stderr.write(`running ${name}…\n`);
  // One suite's failure is a row of the table, not the end of the run: the other suites' numbers still count.
  try {
    rows.push(...(await run()));
  } catch (error) {
    const message = (error instanceof Error ? error.message : String(error)).split("\n")[0];
    rows.push({ suite: name, case: `${name}: failed`, value: NaN, unit: "", note: message });
    process.exitCode = 1;
  }
}

const width = Math.max(...rows.map((r) => r.case.length));
console.log(`${"case".padEnd(width)}  ${"value".padStart(10)}  unit  note`);
for (const row of rows) {
  const value = Number.isFinite(row.value) ? row.value.toFixed(row.value < 10 ? 2 : 0) : "—";
  console.log(`${row.case.padEnd(width)}  ${value.padStart(10)}  ${row.unit.padEnd(4)}  ${row.note ?? ""}`);
}
const loadAfter = loadavg()[0];
console.log(
  `\nload average (1 min) before ${loadBefore.toFixed(2)}, after ${loadAfter.toFixed(2)} on ${cpus().length} cores: above the core count, other work shared the CPUs and the absolute times read high`,
);
mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
const result = {
  date: new Date().toISOString(),
  node: process.version,
  cpu: cpus()[0]?.model,
  cores: cpus().length,
  loadAverage: { before: loadBefore, after: loadAfter },
  rows,
};
writeFileSync(new URL("./results/latest.json", import.meta.url), JSON.stringify(result, null, 2));
console.log("\nwritten: bench/results/latest.json");
