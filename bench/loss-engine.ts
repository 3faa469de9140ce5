/**
 * The loss engine on an OLMoE-sized batch (16 layers × 16,384 tokens × 64
 * experts, top-8), single-threaded, beside PyTorch on one CPU thread, and
 * beside the memory-traffic floor: one streaming read of the logits (eight
 * independent sums, so it measures bandwidth, not the latency of a chain of
 * adds). Medians; the engine and PyTorch run interleaved.
 */
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { performance } from "node:perf_hooks";
import { mkdtempSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { lossRecord, type LossRecord } from "../src/lib/losses/index.js";
import { Worker } from "node:worker_threads";
import { cpus } from "node:os";
import { layerShards, mergeShards, summarize, type RoutingSummary } from "../src/lib/summary.js";
import { writeNpy } from "../src/lib/io/npy.js";
import { normalGenerator } from "../src/lib/random.js";
import { timeBest, type BenchRow } from "./timing.js";

const layers = 16,
  tokens = 16_384,
  experts = 64,
  topK = 8,
  sequences = 32,
  microBatch = 4;

/** Sums a Float32Array with eight independent accumulators: bound by memory bandwidth, not by one add's latency. */
function streamingSum(data: Float32Array): number {
  let a = 0,
    b = 0,
    c = 0,
    d = 0,
    e = 0,
    f = 0,
    g = 0,
    h = 0;
  const n = data.length - (data.length % 8);
  for (let i = 0; i < n; i += 8) {
    a += data[i];
    b += data[i + 1];
    c += data[i + 2];
    d += data[i + 3];
    e += data[i + 4];
    f += data[i + 5];
    g += data[i + 6];
    h += data[i + 7];
  }
  for (let i = n; i < data.length; i++) a += data[i];
  return a + b + c + d + e + f + g + h;
}

/** PyTorch doing the same work in a process that waits for "run" lines, so its runs interleave with ours. */
function startTorch(path: string): Promise<{
  values: Record<string, Record<string, number>>;
  torch: string;
  threads: number;
  run(): Promise<number>;
  stop(): void;
}> {
  const script = fileURLToPath(new URL("./losses_torch.py", import.meta.url));
  const child = spawn(
    "/usr/bin/python3",
    [script, path, String(topK), String(sequences), String(microBatch), "serve"],
    {
      env: { ...process.env, OMP_NUM_THREADS: "1" },
      stdio: ["pipe", "pipe", "pipe"],
    },
  );
  const lines = createInterface({ input: child.stdout! });
  const waiting: ((line: string) => void)[] = [];
  lines.on("line", (line) => waiting.shift()?.(line));
  const next = () => new Promise<string>((resolve) => waiting.push(resolve));
  let stderr = "";
  child.stderr!.on("data", (chunk) => (stderr += chunk));
  return new Promise((resolve, reject) => {
    child.once("exit", (code) =>
      reject(new Error(`PyTorch exited (${code}): ${stderr.split("\n").filter(Boolean).pop() ?? ""}`)),
    );
    next().then((line) => {
      const ready = JSON.parse(line);
      resolve({
        values: ready.values,
        torch: ready.torch,
        threads: ready.threads,
        run: async () => {
          child.stdin!.write("run\n");
          return JSON.parse(await next()).ms as number;
        },
        stop: () => child.stdin!.end("stop\n"),
      });
    }, reject);
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function benchLossEngine(): Promise<BenchRow[]> {
  const normal = normalGenerator(2024);
  // In shared memory, so that worker threads read it in place (the page's workers each read their own part of the file).
  const data = new Float32Array(new SharedArrayBuffer(layers * tokens * experts * 4));
  // a realistic router: per-expert popularity plus token noise
  const popularity = Array.from({ length: experts }, () => normal() * 0.8);
  for (let i = 0; i < data.length; i++) data[i] = popularity[i % experts] + 1.5 * normal();
  const logits = { data, layers, tokens, experts };
  const lengths = new Array(sequences).fill(tokens / sequences);
  const bytes = data.byteLength;

  let record: LossRecord | undefined;
  const engineRun = () => {
    const start = performance.now();
    record = lossRecord(summarize(logits, topK, lengths), microBatch);
    return performance.now() - start;
  };
  const reduceOnly = (() => {
    const summary = summarize(logits, topK, lengths);
    return timeBest(20, () => lossRecord(summary, microBatch));
  })();
  let sink = 0;
  const floor = timeBest(10, () => {
    sink += streamingSum(data);
  });
  void sink;

  // The same work split over worker threads, one shard of layers each, merged exactly: what the your-logits page does.
  const threads = Math.max(1, Math.min(4, cpus().length));
  const shards = layerShards(layers, threads);
  const workers = shards.map(() => new Worker(new URL("./summary-shard-worker.mjs", import.meta.url)));
  let shardedRecord: LossRecord | undefined;
  const shardedRun = async () => {
    const start = performance.now();
    const parts = await Promise.all(
      workers.map(
        (worker, i) =>
          new Promise<RoutingSummary>((resolve, reject) => {
            worker.once("message", resolve);
            worker.once("error", reject);
            worker.postMessage({ data, shape: logits, topK, lengths, layers: shards[i] });
          }),
      ),
    );
    shardedRecord = lossRecord(mergeShards(parts), microBatch);
    return performance.now() - start;
  };

  // The engine and PyTorch, run in turn (ours, theirs, ours, …) so that both see the same machine load.
  const engineTimes: number[] = [];
  const shardedTimes: number[] = [];
  const torchTimes: number[] = [];
  let torch: Awaited<ReturnType<typeof startTorch>> | null = null;
  let torchSkipped = "";
  // The batch as a file for PyTorch (65 MB), removed once the rounds are done.
  let scratch: string | null = null;
  if (existsSync("/usr/bin/python3")) {
    const dir = (scratch = mkdtempSync(join(tmpdir(), "moe-bench-")));
    const path = join(dir, "logits.npy");
    writeFileSync(path, writeNpy(data, [layers, tokens, experts]));
    torch = await startTorch(path).catch((error: Error) => {
      torchSkipped = error.message.split("\n")[0];
      return null;
    });
  } else torchSkipped = "/usr/bin/python3 not found";
  try {
    engineRun(); // warm-up
    await shardedRun();
    for (let round = 0; round < 5; round++) {
      engineTimes.push(engineRun());
      shardedTimes.push(await shardedRun());
      if (torch) torchTimes.push(await torch.run());
    }
  } finally {
    torch?.stop();
    await Promise.all(workers.map((w) => w.terminate()));
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  }
  const engine = median(engineTimes);
  const sharded = median(shardedTimes);
  if (JSON.stringify(shardedRecord) !== JSON.stringify(record))
    throw new Error("the sharded engine's losses differ from the single thread's");

  const rows: BenchRow[] = [
    {
      suite: "loss engine",
      case: "all variants, 16×16384×64, k=8 (TypeScript, 1 thread)",
      value: engine,
      unit: "ms",
      note: "median of 5, interleaved with PyTorch; softmax, lse, top-k, value checks, per-sequence sums, every reduction",
    },
    {
      suite: "loss engine",
      case: `same, ${threads} worker threads (a shard of layers each, as the your-logits page)`,
      value: sharded,
      unit: "ms",
      note: `median of 5, interleaved; ${(engine / sharded).toFixed(2)}× faster than 1 thread; losses identical to it`,
    },
    {
      suite: "loss engine",
      case: "reductions only (new micro-batch size)",
      value: reduceOnly.median,
      unit: "ms",
      note: "median of 20; no softmax re-run",
    },
    {
      suite: "loss engine",
      case: "memory floor: one streaming read of the logits",
      value: floor.median,
      unit: "ms",
      note: `median of 10, 8 independent sums: ${(bytes / 1e6).toFixed(0)} MB at ${(bytes / 1e6 / floor.median).toFixed(1)} GB/s; engine is ${(engine / floor.median).toFixed(1)}× the floor`,
    },
  ];
  if (torch) {
    const diffs: number[] = [];
    for (const family of ["lbl", "z_loss", "cv2", "max_vio"] as const) {
      for (const [key, value] of Object.entries(torch.values[family])) {
        const ours = (record![family] as Record<string, number>)[key];
        diffs.push(Math.abs(ours - value) / Math.max(Math.abs(value), 1e-12));
      }
    }
    const theirs = median(torchTimes);
    rows.push({
      suite: "loss engine",
      case: `PyTorch ${torch.torch}, ${torch.threads} thread, same work`,
      value: theirs,
      unit: "ms",
      note: `median of 5, interleaved; TypeScript/PyTorch = ${(engine / theirs).toFixed(2)} on 1 thread, ${(sharded / theirs).toFixed(2)} on ${threads} (target ≤ 0.5: ${Math.min(engine, sharded) / theirs <= 0.5 ? "met" : "MISSED"}); values agree to ${Math.max(...diffs).toExponential(1)} relative`,
    });
  } else
    rows.push({
      suite: "loss engine",
      case: "PyTorch, 1 thread",
      value: NaN,
      unit: "ms",
      note: `skipped: ${torchSkipped}`,
    });
  return rows;
}
