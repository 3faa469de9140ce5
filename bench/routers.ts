/**
 * Production routers (issue 15): what a convention costs per row against the
 * lab's softmax fast path, the streaming extras (the aux map, a capacity),
 * the exact quantile-balancing solve, and the controllers section of the
 * loss-free page. Every ratio is measured in one run, the arms interleaved
 * (A, B, A, B, …) so that a busy machine slows both alike; medians, not bests.
 */
import { performance } from "node:perf_hooks";
import { summarize } from "../src/lib/summary.js";
import { routingPresets } from "../src/lib/presets.js";
import { AuxMapCounter } from "../src/lib/aux-map.js";
import { CapacityCounter } from "../src/lib/capacity-counter.js";
import { combineListeners } from "../src/lib/summary.js";
import { solveQuantileBias } from "../src/lib/quantile-balancing.js";
import {
  controllerReport,
  quantileSolutions,
  runControllers,
  scoreScale,
  syntheticScoreStream,
} from "../src/lib/bias-controllers.js";
import { normalGenerator } from "../src/lib/random.js";
import type { BenchRow } from "./timing.js";

/** Medians in ms of each arm, run in turn `repeats` times after one warm-up round. */
function interleaved(repeats: number, arms: (() => void)[]): number[] {
  for (const arm of arms) arm();
  const times = arms.map(() => [] as number[]);
  for (let r = 0; r < repeats; r++)
    arms.forEach((arm, i) => {
      const start = performance.now();
      arm();
      times[i].push(performance.now() - start);
    });
  return times.map((t) => t.sort((a, b) => a - b)[Math.floor(t.length / 2)]);
}

export async function benchRouters(): Promise<BenchRow[]> {
  const suite = "production routers";
  const [layers, tokens, experts, k] = [4, 8192, 64, 8];
  const normal = normalGenerator(9);
  const data = Float32Array.from({ length: layers * tokens * experts }, (_, i) => normal() + (i % experts) * 0.01);
  const batch = { data, layers, tokens, experts };
  const lengths = new Array(tokens / 512).fill(512);
  const bias = Float64Array.from({ length: layers * experts }, (_, i) => 0.01 * ((i * 7) % 5));
  const deepseek = routingPresets["deepseek-v3"].convention(k);
  const rows = layers * tokens;
  const [plain, olmoe, ds, dsExtras] = interleaved(5, [
    () => summarize(batch, k, lengths),
    () => summarize(batch, k, lengths, { convention: routingPresets.olmoe.convention(k) }),
    () => summarize(batch, k, lengths, { convention: deepseek, selectionBias: bias }),
    () => {
      const aux = new AuxMapCounter(batch, k);
      const capacity = new CapacityCounter(batch, k, lengths, 1, 1.25, "probs");
      summarize(batch, k, lengths, {
        convention: deepseek,
        selectionBias: bias,
        onRow: combineListeners(aux.onRow, capacity.onRow),
      });
    },
  ]);
  const perRow = (ms: number) => (ms * 1e6) / rows;
  const out: BenchRow[] = [
    {
      suite,
      case: "summary, lab softmax fast path",
      value: perRow(plain),
      unit: "ns",
      note: `per row (${layers}×${tokens}×${experts}, top-${k}), median of 5`,
    },
    {
      suite,
      case: "summary, olmoe convention ÷ fast path",
      value: olmoe / plain,
      unit: "×",
      note: "the same route through ConventionRouter",
    },
    {
      suite,
      case: "summary, deepseek-v3 + bias ÷ fast path",
      value: ds / plain,
      unit: "×",
      note: "sigmoid, 8 groups (4 kept), bias",
    },
    {
      suite,
      case: "+ aux map and capacity ÷ without",
      value: dsExtras / ds,
      unit: "×",
      note: "both listeners on the same pass",
    },
  ];

  // One exact quantile-balancing solve, cold and warm-started from the previous batch's bias.
  const stream = syntheticScoreStream({
    experts: 64,
    topK: 8,
    tokensPerBatch: 256,
    batches: 6,
    switchAt: 3,
    score: "sigmoid",
  });
  const first = solveQuantileBias(stream.batches[0], 256, 64, 8);
  const [cold, warm] = interleaved(5, [
    () => solveQuantileBias(stream.batches[1], 256, 64, 8),
    () => solveQuantileBias(stream.batches[1], 256, 64, 8, { init: first.bias }),
  ]);
  const sweeps = solveQuantileBias(stream.batches[1], 256, 64, 8, { init: first.bias }).iterations;
  out.push(
    {
      suite,
      case: "quantile balancing, one batch, cold",
      value: cold,
      unit: "ms",
      note: "256 tokens × 64 experts, top-8, exact",
    },
    {
      suite,
      case: "quantile balancing, warm start",
      value: warm,
      unit: "ms",
      note: `from the previous batch's bias (${sweeps} sweeps)`,
    },
  );

  // The loss-free page's controllers section at its defaults: the stream, 80 exact solves, 8 controllers, the u sweep.
  const [section] = interleaved(3, [
    () => {
      const s = syntheticScoreStream({
        experts: 32,
        topK: 4,
        tokensPerBatch: 256,
        batches: 80,
        switchAt: 40,
        score: "sigmoid",
      });
      const scale = scoreScale(s);
      const solved = quantileSolutions(s);
      const specs = [
        { rule: "sign", rate: 0.1 * scale },
        { rule: "sign-recentred", rate: 0.1 * scale },
        { rule: "proportional", rate: 0.1 * scale },
        { rule: "multiplicative", rate: 0.1 * scale },
        { rule: "sign-frozen", rate: 0.1 * scale, freezeAt: 64 },
        { rule: "quantile", rate: 0 },
        { rule: "quantile-ema", rate: 0, ema: 0.3 },
        { rule: "quantile-same-batch", rate: 0 },
      ] as const;
      for (const t of runControllers(s, specs, solved)) controllerReport(t, 40, 32);
      for (const f of [0.003, 0.01, 0.03, 0.1, 0.3, 1])
        runControllers(
          s,
          ["sign", "proportional", "multiplicative"].map((rule) => ({ rule: rule as "sign", rate: f * scale })),
        );
    },
  ]);
  out.push({
    suite,
    case: "loss-free page: controllers section",
    value: section,
    unit: "ms",
    note: "80 batches, 80 exact solves, 8 controllers + 18 sweep runs; median of 3",
  });
  return out;
}
