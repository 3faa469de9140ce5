/**
 * Child process of the OLMoE-mini bench: runs a checkpoint on onnxruntime-web's
 * WASM backend in Node (the same .wasm file the page loads, one thread) and
 * writes what it measured as the last line of stdout.
 *
 * It is a separate process because onnxruntime-web's profiler writes its
 * trace (a JSON array of Chrome trace events) to stdout, where the parent
 * collects it: `node --import tsx bench/wasm-profile.ts model.onnx '[ids…]' runs`.
 */
import { readFileSync } from "node:fs";
import * as ort from "onnxruntime-web";
import { medianAsync } from "./timing.js";
import { forwardFeeds, overrideShapeOf } from "../src/lib/model/route-overrides.js";
import { olmoeMini } from "../src/lib/model/olmoe-mini.js";

const [modelPath, idsJson, runsText] = process.argv.slice(2);
const runs = Number(runsText ?? 20);
const ids = JSON.parse(idsJson) as number[];
ort.env.wasm.numThreads = 1;
ort.env.logLevel = "error";
const bytes = readFileSync(modelPath);

// Timing first, without the profiler's overhead; warm-up lets V8 tier the WebAssembly up.
const plain = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
// a full graph also takes the route overrides (their no-override values)
const feed = forwardFeeds(ort.Tensor, plain.inputNames, overrideShapeOf(olmoeMini), ids, 1, ids.length);
const medianMs = await medianAsync(runs, 10, () => plain.run(feed));
await plain.release();

const profiled = await ort.InferenceSession.create(bytes, {
  executionProviders: ["wasm"],
  graphOptimizationLevel: "all",
  enableProfiling: true,
});
for (let i = 0; i < 10 + runs; i++) await profiled.run(feed);
profiled.endProfiling(); // prints the trace to stdout
console.log(`\n${JSON.stringify({ medianMs })}`);
