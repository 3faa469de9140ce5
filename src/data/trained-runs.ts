// Every trained OLMoE-mini run in data/metrics (the four shipped checkpoints
// and the campaign's arms and seeds) with its held-out metrics, a bootstrap
// interval over held-out documents, and its training curve (every 5th step):
// what the ablation.json and z-loss-arms.json data loaders write. Comparisons
// between arms are computed on the pages from these runs, with the statistics
// module, never here. Node only (it reads data/).
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { bootstrapPerplexity } from "../lib/statistics.js";
import { olmoeMini } from "../lib/model/olmoe-mini.js";

/** The shipped strategies: the four checkpoints a reader can run. */
const strategies = olmoeMini.checkpoints;
const root = new URL("../../data/", import.meta.url);
const round = (v: number | undefined) => (v === undefined || v === null ? undefined : Math.round(v * 1e4) / 1e4);
const scalars = [
  "ce",
  "lbl_switch",
  "lbl_sequence",
  "lbl_global",
  "z_olmoe",
  "z_st_moe",
  "max_vio_global",
  "max_vio_micro",
  "load_sd",
  "router_entropy",
  "router_logit_max",
  "lse_p50",
  "lse_p99",
  "bias_abs_mean",
] as const;

/** Population sd of tokens per expert, mean over layers (what the recipe now logs as load_sd). */
function loadSd(load: number[][]): number {
  const sds = load.map((layer) => {
    const mean = layer.reduce((a, b) => a + b, 0) / layer.length;
    return Math.sqrt(layer.reduce((a, v) => a + (v - mean) ** 2, 0) / layer.length);
  });
  return sds.reduce((a, b) => a + b, 0) / sds.length;
}

/** The runs as the loaders write them (fields below). */
export function trainedRuns() {
  const metricFiles = existsSync(new URL("metrics/", root))
    ? readdirSync(new URL("metrics/", root))
        .filter((f) => f.endsWith(".json"))
        .sort()
    : [];
  const runs = [];
  /** The four shipped checkpoints' runs with their full held-out metrics, by strategy (heatmaps, the your-logits page). */
  const shipped: Record<string, unknown> = {};
  for (const file of metricFiles) {
    const run = file.replace(/\.json$/, "");
    const logPath = new URL(`logs/${run}.jsonl`, root);
    if (!existsSync(logPath)) continue;
    const m = JSON.parse(readFileSync(new URL(`metrics/${file}`, root), "utf8"));
    const steps = readFileSync(logPath, "utf8")
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line));
    // The shipped runs' logs predate load_sd: derive it from the loads logged every 5 steps.
    const curve = steps
      // every 5th step (the steps whose loads the logs keep) and the last: ~120 points a run
      .filter((s, i) => i % 5 === 0 || i === steps.length - 1)
      .map((s) => {
        const point: Record<string, number | undefined> = { step: s.step, tokens: s.tokens };
        for (const key of scalars) point[key] = round(s[key]);
        if (point.load_sd === undefined && s.load) point.load_sd = round(loadSd(s.load));
        return point;
      });
    // A run's own uncertainty: bootstrap over held-out documents. Where the
    // per-document NLLs come from the shipped ONNX export (heldout-onnx.ts),
    // their perplexity differs from PyTorch's by < 0.1 %; the interval is
    // scaled to the run's PyTorch perplexity.
    const bootstrap = m.per_document
      ? Object.fromEntries(
          ["code", "prose"].map((domain, d) => {
            const b = bootstrapPerplexity(m.per_document, d, { resamples: 1000, seed: 7 });
            const scale = m.perplexity[domain] / b.perplexity;
            return [domain, { low: b.low * scale, high: b.high * scale, documents: b.documents }];
          }),
        )
      : null;
    runs.push({
      run,
      arm: m.arm ?? m.strategy,
      seed: m.seed ?? 1,
      config: m.arm_config ?? null,
      strategy: m.strategy,
      metrics: {
        perplexity: m.perplexity,
        unigram: m.unigram_perplexity,
        maxVio: m.max_vio.mean,
        maxVioPerLayer: m.max_vio.per_layer,
        bits: m.specialisation_bits.mean,
        deadExperts: m.dead_experts_per_layer.reduce((a: number, b: number) => a + b, 0),
        router: m.router ?? null,
        trainingTokens: m.training_tokens,
        trainingSeconds: m.training_seconds,
        device: m.device ?? "cpu",
      },
      bootstrap,
      curve,
    });
    if (strategies.includes(m.arm ?? m.strategy) && (m.seed ?? 1) === 1) {
      const { per_document: _documents, ...full } = m;
      shipped[m.arm ?? m.strategy] = { finalLoad: steps.filter((s) => s.load).at(-1)?.load, metrics: full };
    }
  }
  const missing = strategies.filter((s) => !shipped[s]);
  return { strategies, shipped, runs, missing };
}
