/**
 * The model worker: fetches an OLMoE-mini checkpoint (once, with progress,
 * kept in Cache Storage for the next visit), opens an onnxruntime-web session
 * on WebGPU when the browser offers an adapter and on WASM otherwise, and
 * runs forward passes. Falls back to WASM when WebGPU fails at session
 * creation or at the first run, and says why.
 */
import * as ortWasm from "onnxruntime-web/wasm";
import * as ortWebGpu from "onnxruntime-web/webgpu";
import type { Backend, LoadRequest, RunRequest, WorkerMessage, WorkerRequest } from "./protocol.js";

type Ort = typeof ortWasm;

const CACHE = "moe-lab-models-v1";
let session: ortWasm.InferenceSession | null = null;
let ort: Ort = ortWasm;
let backend: Backend = "wasm";
let fallbackReason: string | null = null;
let modelBytes: Uint8Array | null = null;
let firstRun = true;

const post = (message: WorkerMessage, transfer: Transferable[] = []) => (self as unknown as Worker).postMessage(message, transfer);

self.onmessage = async (event: MessageEvent<WorkerRequest>) => {
  const request = event.data;
  try {
    if (request.type === "load") await load(request);
    else await run(request);
  } catch (error) {
    post({ type: "error", stage: request.type, message: describe(error) });
  }
};

async function load(request: LoadRequest): Promise<void> {
  const started = performance.now();
  for (const [runtime, urls] of [[ortWasm, request.wasmPaths.wasm], [ortWebGpu as unknown as Ort, request.wasmPaths.webgpu]] as const) {
    runtime.env.wasm.wasmPaths = urls;
    // GitHub Pages sends no COOP/COEP headers, so threads are unavailable there.
    runtime.env.wasm.numThreads = self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
    runtime.env.logLevel = "error";
  }
  const { bytes, fromCache } = await fetchModel(request.modelUrl);
  modelBytes = bytes;
  fallbackReason = null;
  backend = "wasm";
  let adapterReason: string | null = null;
  if (request.backend === "wasm") adapterReason = "WASM was requested (?ep=wasm)";
  else if (!("gpu" in navigator)) adapterReason = "this browser has no WebGPU (navigator.gpu is missing)";
  else if (!(await (navigator as Navigator & { gpu: { requestAdapter(): Promise<unknown> } }).gpu.requestAdapter())) adapterReason = "WebGPU offered no adapter";
  if (adapterReason === null) {
    try {
      ort = ortWebGpu as unknown as Ort;
      session = await ort.InferenceSession.create(bytes, { executionProviders: ["webgpu"], graphOptimizationLevel: "all", logSeverityLevel: 3 });
      backend = "webgpu";
    } catch (error) {
      fallbackReason = `WebGPU session failed: ${describe(error)}`;
    }
  } else fallbackReason = adapterReason;
  session = backend === "webgpu" ? session : null;
  if (!session) await openWasm(bytes);
  firstRun = true;
  post({ type: "loaded", backend, fallbackReason, loadMs: performance.now() - started, fromCache, bytes: bytes.byteLength });
}

async function run(request: RunRequest): Promise<void> {
  if (!session) throw new Error("no model is loaded");
  const ids = new ort.Tensor("int64", BigInt64Array.from(request.inputIds, (v) => BigInt(v)), [request.batch, request.seq]);
  const started = performance.now();
  let output: ortWasm.InferenceSession.OnnxValueMapType;
  try {
    output = await session.run({ input_ids: ids });
  } catch (error) {
    if (backend !== "webgpu" || !firstRun || !modelBytes) throw error;
    // WebGPU failed on its first run: fall back to WASM for good.
    fallbackReason = `WebGPU failed at the first run: ${describe(error)}`;
    await openWasm(modelBytes);
    output = await session!.run({ input_ids: new ort.Tensor("int64", BigInt64Array.from(request.inputIds, (v) => BigInt(v)), [request.batch, request.seq]) });
  }
  firstRun = false;
  const router = output.router_logits as ortWasm.Tensor;
  const data = new Float32Array(router.data as Float32Array); // own copy, transferable
  // Files exported before the expert_bias output existed route without a bias.
  const biasTensor = output.expert_bias as ortWasm.Tensor | undefined;
  const bias = biasTensor ? new Float32Array(biasTensor.data as Float32Array) : null;
  post({ type: "result", router: data, dims: [...router.dims], bias, backend, ms: performance.now() - started, fallbackReason }, bias ? [data.buffer, bias.buffer] : [data.buffer]);
}

/** A session on the plain WASM build. "all" optimisations fold the float16 → float32 casts of the weights once, instead of at every run. */
async function openWasm(bytes: Uint8Array): Promise<void> {
  ort = ortWasm;
  session = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"], graphOptimizationLevel: "all", logSeverityLevel: 3 });
  backend = "wasm";
}

/** The model's bytes from Cache Storage, or from the network with progress (then cached). */
async function fetchModel(url: string): Promise<{ bytes: Uint8Array; fromCache: boolean }> {
  const cache = "caches" in self ? await caches.open(CACHE).catch(() => null) : null;
  const cached = await cache?.match(url);
  if (cached) {
    const bytes = new Uint8Array(await cached.arrayBuffer());
    post({ type: "progress", loaded: bytes.byteLength, total: bytes.byteLength, fromCache: true });
    return { bytes, fromCache: true };
  }
  const response = await fetch(url);
  if (!response.ok || !response.body) throw new Error(`the model could not be downloaded (HTTP ${response.status} for ${url.split("/").pop()})`);
  const total = Number(response.headers.get("content-length")) || null;
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let loaded = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    loaded += value.byteLength;
    post({ type: "progress", loaded, total, fromCache: false });
  }
  const bytes = new Uint8Array(loaded);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
  await cache?.put(url, new Response(bytes.slice(), { headers: { "content-type": "application/octet-stream" } })).catch(() => undefined);
  return { bytes, fromCache: false };
}

function describe(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split("\n")[0].slice(0, 300);
}
