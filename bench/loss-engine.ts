/**
 * The loss engine on an OLMoE-sized batch (16 layers × 16,384 tokens × 64
 * experts, top-8), single-threaded, beside PyTorch on one CPU thread, and
 * beside the memory-traffic floor: one streaming read of the logits.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { lossRecord, type LossRecord } from "../src/lib/losses/index.js";
import { summarize } from "../src/lib/summary.js";
import { writeNpy } from "../src/lib/io/npy.js";
import { normalGenerator } from "../src/lib/random.js";
import { timeBest, type BenchRow } from "./timing.js";

const layers = 16,
  tokens = 16_384,
  experts = 64,
  topK = 8,
  sequences = 32,
  microBatch = 4;

export async function benchLossEngine(): Promise<BenchRow[]> {
  const normal = normalGenerator(2024);
  const data = new Float32Array(layers * tokens * experts);
  // a realistic router: per-expert popularity plus token noise
  const popularity = Array.from({ length: experts }, () => normal() * 0.8);
  for (let i = 0; i < data.length; i++) data[i] = popularity[i % experts] + 1.5 * normal();
  const logits = { data, layers, tokens, experts };
  const lengths = new Array(sequences).fill(tokens / sequences);
  const bytes = data.byteLength;

  let record: LossRecord | undefined;
  const engine = timeBest(5, () => {
    record = lossRecord(summarize(logits, topK, lengths), microBatch);
  });
  const reduceOnly = (() => {
    const summary = summarize(logits, topK, lengths);
    return timeBest(20, () => lossRecord(summary, microBatch));
  })();
  let sink = 0;
  const floor = timeBest(10, () => {
    let s = 0;
    for (let i = 0; i < data.length; i++) s += data[i];
    sink += s;
  });
  void sink;

  const rows: BenchRow[] = [
    {
      suite: "loss engine",
      case: "all variants, 16×16384×64, k=8 (TypeScript, 1 thread)",
      value: engine.best,
      unit: "ms",
      note: `median ${engine.median.toFixed(0)} ms`,
    },
    {
      suite: "loss engine",
      case: "reductions only (new micro-batch size)",
      value: reduceOnly.best,
      unit: "ms",
      note: "no softmax re-run",
    },
    {
      suite: "loss engine",
      case: "memory floor: one read of the logits",
      value: floor.best,
      unit: "ms",
      note: `${(bytes / 1e6).toFixed(0)} MB at ${(bytes / 1e6 / floor.best).toFixed(1)} GB/s; engine is ${(engine.best / floor.best).toFixed(1)}× the floor`,
    },
  ];

  const python = "/usr/bin/python3";
  if (!existsSync(python)) {
    rows.push({
      suite: "loss engine",
      case: "PyTorch, 1 thread",
      value: NaN,
      unit: "ms",
      note: "skipped: /usr/bin/python3 not found",
    });
    return rows;
  }
  const dir = mkdtempSync(join(tmpdir(), "moe-bench-"));
  const path = join(dir, "logits.npy");
  writeFileSync(path, writeNpy(data, [layers, tokens, experts]));
  try {
    const script = fileURLToPath(new URL("./losses_torch.py", import.meta.url));
    const out = JSON.parse(
      execFileSync(python, [script, path, String(topK), String(sequences), String(microBatch), "5"], {
        encoding: "utf8",
        env: { ...process.env, OMP_NUM_THREADS: "1" },
      }),
    );
    const diffs: number[] = [];
    for (const family of ["lbl", "z_loss", "cv2", "max_vio"] as const) {
      for (const [key, value] of Object.entries(out.values[family] as Record<string, number>)) {
        const ours = (record![family] as Record<string, number>)[key];
        diffs.push(Math.abs(ours - value) / Math.max(Math.abs(value), 1e-12));
      }
    }
    rows.push({
      suite: "loss engine",
      case: `PyTorch ${out.torch}, ${out.threads} thread, same work`,
      value: out.best_ms,
      unit: "ms",
      note: `TypeScript/PyTorch = ${(engine.best / out.best_ms).toFixed(2)}; values agree to ${Math.max(...diffs).toExponential(1)} relative`,
    });
  } catch (error) {
    rows.push({
      suite: "loss engine",
      case: "PyTorch, 1 thread",
      value: NaN,
      unit: "ms",
      note: `skipped: ${(error as Error).message.split("\n")[0]}`,
    });
  }
  return rows;
}
