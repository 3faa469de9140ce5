/**
 * Where a forward pass spends its time, per operator type, in onnxruntime's
 * own profiler: onnxruntime-web's WASM kernels (run in Node, so the browser
 * adds nothing) against onnxruntime-node's native ones, same graph, same
 * input, one thread each. It tells which part of the WASM/native gap the
 * graph could change and which part is the kernels themselves.
 */
import { execFileSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as ort from "onnxruntime-node";
import { medianAsync } from "./timing.js";
import { forwardFeeds, overrideShapeOf } from "../src/lib/model/route-overrides.js";
import { olmoeMini } from "../src/lib/model/olmoe-mini.js";

/** One event of a Chrome trace as onnxruntime writes it. */
interface TraceEvent {
  cat: string;
  name: string;
  ts: number; // µs
  dur: number; // µs
  args?: { op_name?: string };
}

export interface OperatorProfile {
  /** Median forward time without the profiler, ms. */
  medianMs: number;
  /** Mean time per forward pass spent in each operator type, ms (profiled runs). */
  msPerOp: Map<string, number>;
}

const here = fileURLToPath(new URL("./", import.meta.url));

/** Mean ms per run per operator type over the last `runs` runs of a trace. */
export function operatorTimes(events: TraceEvent[], runs: number): Map<string, number> {
  const modelRuns = events.filter((e) => e.name === "model_run");
  if (modelRuns.length < runs) throw new Error(`the trace holds ${modelRuns.length} runs, fewer than ${runs}`);
  const from = modelRuns[modelRuns.length - runs].ts;
  const msPerOp = new Map<string, number>();
  for (const e of events) {
    if (e.cat !== "Node" || !e.name.endsWith("_kernel_time") || e.ts < from || !e.args?.op_name) continue;
    msPerOp.set(e.args.op_name, (msPerOp.get(e.args.op_name) ?? 0) + e.dur / 1000 / runs);
  }
  return msPerOp;
}

/** The JSON array of trace events inside text that may hold other output around it. */
function traceIn(text: string): TraceEvent[] {
  const start = text.indexOf("[\n{");
  const end = text.lastIndexOf("]");
  if (start < 0 || end < start) throw new Error("no profiler trace in the output");
  return JSON.parse(text.slice(start, end + 1)) as TraceEvent[];
}

export function profileWasm(modelPath: string, ids: number[], runs = 20): OperatorProfile {
  // The child's stdout is a file, not a pipe: onnxruntime-web's profiler writes its trace with a
  // synchronous write that fails with EAGAIN when a pipe is full (seen on a loaded machine).
  const dir = mkdtempSync(join(tmpdir(), "moe-lab-wasm-profile-"));
  let out: string;
  try {
    const file = join(dir, "stdout");
    const fd = openSync(file, "w");
    try {
      execFileSync(
        process.execPath,
        ["--import", "tsx", join(here, "wasm-profile.ts"), modelPath, JSON.stringify(ids), String(runs)],
        { cwd: join(here, ".."), stdio: ["ignore", fd, "inherit"] },
      );
    } finally {
      closeSync(fd);
    }
    out = readFileSync(file, "utf8");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const lines = out.trimEnd().split("\n");
  const { medianMs } = JSON.parse(lines[lines.length - 1]) as { medianMs: number };
  return { medianMs, msPerOp: operatorTimes(traceIn(lines.slice(0, -1).join("\n")), runs) };
}

export async function profileNative(modelPath: string, ids: number[], runs = 20): Promise<OperatorProfile> {
  const plain = await ort.InferenceSession.create(modelPath, { intraOpNumThreads: 1 });
  const feed = forwardFeeds(ort.Tensor, plain.inputNames, overrideShapeOf(olmoeMini), ids, 1, ids.length);
  const medianMs = await medianAsync(runs, 10, () => plain.run(feed));
  await plain.release();

  const dir = mkdtempSync(join(tmpdir(), "moe-lab-profile-"));
  try {
    const profiled = await ort.InferenceSession.create(modelPath, {
      intraOpNumThreads: 1,
      enableProfiling: true,
      profileFilePrefix: join(dir, "native"),
    });
    for (let i = 0; i < 10 + runs; i++) await profiled.run(feed);
    profiled.endProfiling();
    await profiled.release();
    const file = readdirSync(dir).find((f) => f.endsWith(".json"));
    if (!file) throw new Error("onnxruntime-node wrote no profile");
    return { medianMs, msPerOp: operatorTimes(traceIn(readFileSync(join(dir, file), "utf8")), runs) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
