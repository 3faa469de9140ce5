/**
 * The model worker, one per page: fetches OLMoE-mini checkpoints (with
 * progress; a download that stalls is reported) and runs forward passes, one
 * at a time in the order asked (a waiting one can be cancelled; one longer
 * than the model's context is refused).
 *
 * A router-only graph runs on the lab's own forward pass
 * (src/lib/model/router-forward.ts) unless the reader asked for
 * onnxruntime-web (`?ep=wasm`, `?ep=webgpu`): its first answer then costs a
 * few tenths of a second, where onnxruntime-web's init, first session and
 * first run cost 1.5–3 s on two cores. Every other graph opens as an
 * onnxruntime-web session, one per graph (the runtime's WASM is compiled once;
 * the checkpoints share a graph and differ in their weights, which each run
 * feeds: src/lib/model/onnx-weights.ts), on WebGPU when the browser offers a
 * hardware adapter and on WASM otherwise; it falls back to WASM when WebGPU
 * fails at session creation or at the first run, and says why. A file is kept
 * in Cache Storage for the next visit only once it has opened (as a session
 * with a `router_logits` output, or as a router-only graph the lab's forward
 * pass reads); a cached copy that no longer opens is replaced.
 */
import * as ortWasm from "onnxruntime-web/wasm";
import * as ortWebGpu from "onnxruntime-web/webgpu";
import type { Backend, LoadRequest, RunRequest, WorkerMessage, WorkerRequest } from "./model-protocol.js";
import { olmoeMini } from "../lib/model/olmoe-mini.js";
import { forwardFeeds, nextTokenReadout, overrideShapeOf, refuseOverrides } from "../lib/model/route-overrides.js";
import {
  alignedWeights,
  sameGraph,
  splitWeights,
  weightFeeds,
  type SplitModel,
  type Weight,
} from "../lib/model/onnx-weights.js";
import { readRouterGraph, routerForward, type RouterGraph } from "../lib/model/router-forward.js";
import { linearLanes, linearOn, type Linear, type LinearKernelExports } from "../lib/model/linear-kernel.js";
import { linearKernelWasm } from "../lib/model/linear-kernel.wasm.js";

const overrideShape = overrideShapeOf(olmoeMini);

type Ort = typeof ortWasm;

/**
 * An inference session, the runtime and backend it runs on, and the model it
 * was opened from (for a WASM fallback): one per graph, shared by every
 * checkpoint of that graph.
 */
interface Runner {
  session: ortWasm.InferenceSession;
  ort: Ort;
  backend: Backend;
  fallbackReason: string | null;
  graph: Uint8Array;
  /** The optimisation level it was opened with (a WASM fallback reopens it so). */
  level: Optimization;
  firstRun: boolean;
}

/** One checkpoint open on onnxruntime-web: the session that runs it, the weights each run feeds it (none when the session holds them), its file's size. */
interface SessionModel {
  kind: "session";
  runner: Runner;
  /** The graph's own inputs: what a run feeds besides the weights. */
  inputNames: readonly string[];
  weights: readonly Weight[];
  size: number;
  fromCache: boolean;
  /** How long its first load took, set when that load answers (a page that asks again, or adopts the early worker's load, is told this). */
  loadMs: number;
}

/** One router-only checkpoint open on the lab's own forward pass. */
interface LabModel {
  kind: "js";
  graph: RouterGraph;
  size: number;
  fromCache: boolean;
  /** As SessionModel's. */
  loadMs: number;
}

type OpenModel = SessionModel | LabModel;

/** What a page is told about where a model runs. */
const backendOf = (model: OpenModel) =>
  model.kind === "js"
    ? { backend: "js" as const, fallbackReason: null }
    : { backend: model.runner.backend, fallbackReason: model.runner.fallbackReason };

const CACHE = "moe-lab-models-v1";
/** Every checkpoint this page opened, by URL: one worker and one compiled runtime serve them all. */
const models = new Map<string, OpenModel>();
/** Sessions of weightless graphs (splitWeights), by backend and the graph's key: the checkpoints of a graph share one. */
const runners = new Map<string, Promise<Runner>>();
let configured = false;

const post = (message: WorkerMessage, transfer: Transferable[] = []) =>
  (self as unknown as Worker).postMessage(message, transfer);

/**
 * One turn of this thread's event loop: between the long steps of reading a
 * checkpoint and routing, the callbacks waiting for this thread run (a
 * download's next chunk, the next download's start). Each step takes 30–270 ms
 * on two busy cores (splitting a file, reading its weights, a forward pass; the
 * first of each slowest), and a download's chunks arrive only while this thread is free.
 */
const breathe = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

/**
 * Downloads asked for ahead of their load, by URL. They run one after another,
 * after every download asked for before them, and each file is read into the
 * lab's pass's weights as soon as it arrives (`readAhead`): the first file
 * arrives after a quarter of the time all four take side by side, and while
 * the page still loads its modules this thread has nothing else to do, so by
 * the time the page asks, only the last file is left to open. Measured against
 * the four side by side, each opened when its load asked (medians of 7 and 5
 * interleaved visits on two cores): the ablation's live side-by-side 3.68 s
 * against 4.22 s, z-loss's live table 3.54 s against 4.19 s. Against the four
 * side by side and read ahead as they arrive, as the bench visits (medians of
 * 9, interleaved): 3.43 s against 3.37 s, z-loss 3.41 s against 3.36 s, the
 * same within their spread; one after another is kept because the first file,
 * and so the ablation's first card, arrives after a quarter of the time.
 * Each next download starts in the turn of this thread in which the one before
 * it ends, before that file is read (its Cache Storage lookup is made when it is
 * asked for, and reading and routing give way between steps: `breathe`). Before,
 * it waited for that reading: on the z-loss page each download began 150–360 ms
 * after the one before had arrived, and the four files' downloads and readings
 * ran end to end. The worker alone (medians of 9 interleaved visits, a loaded
 * machine): z-loss's work 2.75 s against 2.85 s, the ablation's 2.27 s against 2.43 s.
 */
const prefetched = new Map<string, Promise<{ bytes: Uint8Array; fromCache: boolean }>>();
/** Settles when every download asked for so far has ended (a prefetch starts after it). */
let downloadsBefore: Promise<unknown> = Promise.resolve();
/** Router-only graphs read from a prefetched file before their load asked for them, by URL. */
const readAheadGraphs = new Map<string, RouterGraph>();
/** The backend the last load asked for: a file is read ahead only for the lab's pass ("auto"). */
let lastBackend: LoadRequest["backend"] | null = null;

async function readAhead(modelUrl: string, bytes: Uint8Array): Promise<void> {
  // Its load got there first (and opened it), or the reader asked for onnxruntime-web.
  if (models.has(modelUrl) || !prefetched.has(modelUrl) || lastBackend !== "auto") return;
  const { graph } = await readFile(bytes, true); // no graph: its load opens the file on onnxruntime-web
  if (graph) readAheadGraphs.set(modelUrl, graph);
}

// Requests run one at a time, in order (a session is not asked to run twice at once);
// a prefetch starts its download beside them, and a cancel takes a waiting run out of the queue.
let queue: Promise<void> = Promise.resolve();
/** Forward passes cancelled while they waited; ids count up, so a cancel for a started one is ignored. */
const cancelled = new Set<number>();
let lastStarted = -Infinity;
self.onmessage = (event: MessageEvent<WorkerRequest>) => {
  const request = event.data;
  if (request.type === "cancel") {
    if (request.id > lastStarted) cancelled.add(request.id);
    return;
  }
  if (request.type === "prefetch") {
    const { modelUrl, id } = request;
    if (!models.has(modelUrl) && !prefetched.has(modelUrl)) {
      // Looked up in Cache Storage now, so that when the download before it ends, this one
      // starts in that same turn of this thread, before the file that arrived is read.
      const cached = cachedCopy(modelUrl);
      const download = downloadsBefore.then(() => fetchModel(modelUrl, null, cached));
      download.catch(() => {}); // its load reports a failure (and tries again)
      downloadsBefore = download.catch(() => {});
      prefetched.set(modelUrl, download);
      // Read in the request queue's order: a load or run already waiting goes first.
      // Never a rejection in the queue: every request after it would wait forever. A file that cannot be
      // read ahead is read again by its load, which reports why.
      download.then(
        ({ bytes }) => (queue = queue.then(() => readAhead(modelUrl, bytes)).catch(() => {})),
        () => {},
      );
    }
    return;
  }
  waiting++;
  clearTimeout(storeTimer);
  queue = queue.then(async () => {
    // A load starts its download at once; a forward pass first lets the callbacks waiting for this thread run.
    if (request.type === "run") await breathe();
    lastStarted = Math.max(lastStarted, request.id);
    try {
      if (cancelled.delete(request.id) && request.type === "run") return; // a load is never dropped: other runs need it
      if (request.type === "load") await load(request);
      else await run(request);
    } catch (error) {
      post({ id: request.id, type: "error", stage: request.type, message: describe(error) });
    } finally {
      if (--waiting === 0) storeTimer = setTimeout(storeWhileIdle, STORE_AFTER_IDLE_MS);
    }
  });
};

/**
 * Downloaded files that opened, waiting to be kept in Cache Storage for the
 * next visit. They are written only once the page has asked nothing of this
 * worker for STORE_AFTER_IDLE_MS: committing a 6 MB file costs this thread
 * 0.1–0.2 s of CPU on two cores, which the z-loss page's four checkpoints
 * would otherwise spend while the reader waits for their numbers.
 */
const toStore: { url: string; bytes: Uint8Array }[] = [];
const STORE_AFTER_IDLE_MS = 1000;
/** Loads and runs queued or running. */
let waiting = 0;
let storeTimer: ReturnType<typeof setTimeout> | undefined;

async function storeWhileIdle(): Promise<void> {
  // One file at a time, and none once a request has come in (the next idle moment goes on).
  while (waiting === 0 && toStore.length) {
    const { url, bytes } = toStore.shift()!;
    await storeCached(url, bytes);
  }
}

function configure(request: LoadRequest): void {
  if (configured) return;
  configured = true;
  for (const [runtime, urls] of [
    [ortWasm, request.wasmPaths.wasm],
    [ortWebGpu as unknown as Ort, request.wasmPaths.webgpu],
  ] as const) {
    // GitHub Pages sends no COOP/COEP headers, so threads are unavailable there.
    const threads = self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
    runtime.env.wasm.numThreads = threads;
    // Single-threaded, the runtime's glue code is the copy bundled into this worker
    // (onnxruntime-web's *.bundle.min.mjs): naming the .mjs file would import it over
    // the network first, 0.15-0.35 s before the wasm's own download could start. With
    // threads, the runtime starts its thread workers from the glue module's own file.
    runtime.env.wasm.wasmPaths = threads > 1 ? urls : { wasm: urls.wasm };
    runtime.env.logLevel = "error";
  }
}

async function load(request: LoadRequest): Promise<void> {
  const started = performance.now();
  const { id, modelUrl } = request;
  lastBackend = request.backend;
  const open = models.get(modelUrl);
  if (open) {
    post({
      id,
      type: "loaded",
      ...backendOf(open),
      loadMs: open.loadMs,
      fromCache: open.fromCache,
      bytes: open.size,
    });
    return;
  }
  configure(request);
  // The download starts before the adapter is asked for (which may take a few hundred ms).
  // A download asked for ahead (a failed one is tried again here); its progress went to nobody, so say it is done.
  const ahead = prefetched.get(modelUrl);
  prefetched.delete(modelUrl);
  const download = ahead
    ? ahead.then(
        (model) => {
          const size = model.bytes.byteLength;
          post({ id, type: "progress", loaded: size, total: size, fromCache: model.fromCache });
          return model;
        },
        () => fetchModel(modelUrl, id),
      )
    : fetchModel(modelUrl, id);
  download.catch(() => {}); // awaited below: a failure is reported there
  if (!ahead) downloadsBefore = Promise.all([downloadsBefore, download]).catch(() => {}); // the prefetches after it wait
  let model: { bytes: Uint8Array; fromCache: boolean };
  /** Why not WebGPU (null: use it), asked only once onnxruntime-web is needed. */
  let adapterVerdict: () => Promise<string | null>;
  if (request.backend === "auto") {
    // Whether onnxruntime-web is needed at all is known from the file (a router-only graph runs on the lab's own pass).
    model = await download;
    adapterVerdict = () => webGpuVerdict(false);
  } else {
    const adapterReason =
      request.backend === "wasm" ? "WASM was requested (?ep=wasm)" : await webGpuVerdict(request.backend === "webgpu");
    adapterVerdict = async () => adapterReason;
    // The runtime's wasm is fetched and compiled while the checkpoint downloads, not after.
    [model] = await Promise.all([download, warmRuntime(adapterReason === null)]);
  }
  const openBytes = (bytes: Uint8Array) => openModel(bytes, request.backend === "auto", adapterVerdict);
  let opened: OpenModel;
  const readGraph = request.backend === "auto" ? readAheadGraphs.get(modelUrl) : undefined;
  readAheadGraphs.delete(modelUrl);
  try {
    opened = readGraph ? labModel(readGraph, model.bytes) : await openBytes(model.bytes);
  } catch (error) {
    if (!model.fromCache) throw new Error(`the downloaded file is not a model this page can run (${describe(error)})`);
    // A cached copy that no longer opens (written by an older page, or damaged
    // on disk): drop it and download the file once more.
    await dropCached(modelUrl);
    model = await fetchModel(modelUrl, id);
    opened = await openBytes(model.bytes).catch((again) => {
      throw new Error(
        `the model does not open, from this browser's cache or freshly downloaded (${describe(again)}); if this persists, clear this site's data in the browser's settings and reload`,
      );
    });
  }
  // Only a file that opened (as an inference session with the outputs the lab
  // reads, or on the lab's own pass) is kept for the next visit: a corrupt download is never cached.
  // Written once the worker is idle (storeWhileIdle): neither this answer nor the next request waits for it.
  if (!model.fromCache) toStore.push({ url: modelUrl, bytes: model.bytes });
  opened.fromCache = model.fromCache;
  opened.loadMs = performance.now() - started;
  models.set(modelUrl, opened);
  post({
    id,
    type: "loaded",
    ...backendOf(opened),
    loadMs: opened.loadMs,
    fromCache: model.fromCache,
    bytes: model.bytes.byteLength,
  });
}

interface Adapter {
  isFallbackAdapter?: boolean;
  info?: { vendor?: string; architecture?: string; device?: string; description?: string; isFallbackAdapter?: boolean };
}

/** whyNotWebGpu's answer, asked once per worker (and per `forced`): the adapter does not change while a page is open. */
const verdicts = new Map<boolean, Promise<string | null>>();
function webGpuVerdict(forced: boolean): Promise<string | null> {
  if (!verdicts.has(forced)) verdicts.set(forced, whyNotWebGpu(forced));
  return verdicts.get(forced)!;
}

/**
 * Why this worker should not use WebGPU, or null when it should. A software
 * adapter (the browser flags it `isFallbackAdapter`, or names SwiftShader in
 * its info) is used only when the reader asked for WebGPU (`?ep=webgpu`).
 */
async function whyNotWebGpu(forced: boolean): Promise<string | null> {
  const gpu = (navigator as Navigator & { gpu?: { requestAdapter(): Promise<Adapter | null> } }).gpu;
  if (!gpu) return "this browser has no WebGPU (navigator.gpu is missing)";
  const adapter = await gpu.requestAdapter().catch(() => null);
  if (!adapter) return "WebGPU offered no adapter";
  // GPUAdapterInfo's fields are getters on its prototype: read them by name
  // (Object.values sees none). Chromium moved isFallbackAdapter into the info.
  const info = adapter.info ?? {};
  const names = [info.vendor, info.architecture, info.device, info.description].join(" ");
  const software = adapter.isFallbackAdapter === true || info.isFallbackAdapter === true || /swiftshader/i.test(names);
  if (software && !forced)
    return "the only WebGPU adapter is a software one (SwiftShader), slower than WASM; add ?ep=webgpu to the address to use it anyway";
  return null;
}

/**
 * A 68-byte ONNX graph (one Identity node, made with python3-onnx). Opening it
 * makes onnxruntime fetch and compile its wasm; the worker does that while
 * the checkpoint downloads, once per runtime. A failure here changes nothing:
 * the real session reports its own.
 */
const WARM_MODEL = Uint8Array.from(
  atob("CAg6OgoQCgF4EgF5IghJZGVudGl0eRIEd2FybVoPCgF4EgoKCAgBEgQKAggBYg8KAXkSCgoICAESBAoCCAFCBAoAEBE="),
  (c) => c.charCodeAt(0),
);
const warmed = new Map<string, Promise<unknown>>();
function warmRuntime(webgpu: boolean): Promise<unknown> {
  const key = webgpu ? "webgpu" : "wasm";
  if (!warmed.has(key)) {
    const runtime = webgpu ? (ortWebGpu as unknown as Ort) : ortWasm;
    warmed.set(
      key,
      runtime.InferenceSession.create(WARM_MODEL, { executionProviders: [key] })
        .then((session) => session.release())
        .catch(() => null),
    );
  }
  return warmed.get(key)!;
}

/**
 * Opens a checkpoint: a router-only graph on the lab's own forward pass when
 * `lab` allows it and the graph is one it computes (router-forward.ts says
 * why not, and the file goes to onnxruntime-web); otherwise split into its
 * graph and weights, on the session already open for that graph or a new one
 * (on WebGPU when `adapterVerdict` finds no reason against it); a file that does not
 * split (onnx-weights says why) opens as it is, with its weights in its own session.
 */
function splitOrNull(bytes: Uint8Array): SplitModel | null {
  try {
    return splitWeights(bytes);
  } catch {
    return null; // onnxruntime-web opens the file whole (and says why not, if it cannot)
  }
}

/**
 * A downloaded file split into graph and weights, and where `lab` allows, its
 * weights for the lab's pass (null where it is not OLMoE-mini's router-only
 * graph). This thread breathes first, so that the next download starts before
 * this file is read, and again between the two steps.
 */
async function readFile(
  bytes: Uint8Array,
  lab: boolean,
): Promise<{ split: SplitModel | null; graph: RouterGraph | null }> {
  await breathe();
  const split = splitOrNull(bytes);
  if (!split || !lab) return { split, graph: null };
  await breathe();
  return { split, graph: labGraph(split) };
}

/** The file's weights for the lab's pass, or null where it is not OLMoE-mini's router-only graph (onnxruntime-web runs it). */
function labGraph(split: SplitModel): RouterGraph | null {
  try {
    return readRouterGraph(split, olmoeMini);
  } catch {
    return null;
  }
}

const labModel = (graph: RouterGraph, bytes: Uint8Array): LabModel => ({
  kind: "js",
  graph,
  size: bytes.byteLength,
  fromCache: false,
  loadMs: 0,
});

async function openModel(
  bytes: Uint8Array,
  lab: boolean,
  adapterVerdict: () => Promise<string | null>,
): Promise<OpenModel> {
  const { split, graph: weights } = await readFile(bytes, lab);
  if (weights) return labModel(weights, bytes);
  const adapterReason = await adapterVerdict();
  await warmRuntime(adapterReason === null);
  if (!split) {
    const runner = await openRunner(bytes, adapterReason, "all");
    return {
      kind: "session",
      runner,
      inputNames: runner.session.inputNames,
      weights: [],
      size: bytes.byteLength,
      fromCache: false,
      loadMs: 0,
    };
  }
  const { graph } = split;
  const key = `${adapterReason === null ? "webgpu" : "wasm"}/${split.key}`;
  let shared = runners.get(key);
  if (!shared) {
    shared = openRunner(graph, adapterReason, WEIGHTLESS_OPTIMIZATION);
    runners.set(key, shared);
    shared.catch(() => runners.delete(key)); // a graph that failed to open is tried again by the next checkpoint
  }
  let runner = await shared;
  // Two graphs with one key (a hash collision): this one gets a session of its own.
  if (!sameGraph(runner.graph, graph)) runner = await openRunner(graph, adapterReason, WEIGHTLESS_OPTIMIZATION);
  return {
    kind: "session",
    runner,
    inputNames: split.inputNames,
    weights: alignedWeights(split.weights), // fed at every run: aligned once, here
    size: bytes.byteLength,
    fromCache: false,
    loadMs: 0,
  };
}

/**
 * The optimisation level of a session whose weights are inputs: nothing
 * folds into constants there, and "all" spends ~0.4 s more to open it on two
 * cores for runs no faster (Node, onnxruntime-web 1.30, 4 checkpoints).
 */
const WEIGHTLESS_OPTIMIZATION = "disabled";
type Optimization = typeof WEIGHTLESS_OPTIMIZATION | "all";

/** Opens `graph` on WebGPU when it should and can (`adapterReason` null), on WASM otherwise; checks the outputs the lab reads. */
async function openRunner(graph: Uint8Array, adapterReason: string | null, level: Optimization): Promise<Runner> {
  let fallbackReason: string | null = null;
  let opened: Runner | null = null;
  if (adapterReason === null) {
    try {
      const ort = ortWebGpu as unknown as Ort;
      const session = await ort.InferenceSession.create(graph, {
        executionProviders: ["webgpu"],
        graphOptimizationLevel: level,
        logSeverityLevel: 3,
      });
      opened = { session, ort, backend: "webgpu", fallbackReason: null, graph, level, firstRun: true };
    } catch (error) {
      fallbackReason = `WebGPU session failed: ${describe(error)}`;
    }
  } else fallbackReason = adapterReason;
  if (!opened) opened = { ...(await openWasm(graph, level)), fallbackReason, graph, level, firstRun: true };
  const outputs = opened.session.outputNames;
  if (!outputs.includes("router_logits")) {
    throw new Error(
      `the model has no router_logits output (its outputs: ${outputs.join(", ") || "none"}), so there is nothing to route`,
    );
  }
  return opened;
}

const NO_LOGITS = "this model file has no logits output (a router-only graph): load the checkpoint's full graph";

async function run(request: RunRequest): Promise<void> {
  const model = models.get(request.modelUrl);
  if (!model) throw new Error("no model is loaded");
  const { seq } = request;
  // The graph computes RoPE for any length, but OLMoE-mini never saw more than `context` tokens at once:
  // its routing of a longer sequence would be a number from outside anything it learned.
  if (seq > olmoeMini.context)
    throw new Error(
      `a sequence of ${seq} tokens is longer than OLMoE-mini's context of ${olmoeMini.context}: route a longer text as windows, as the pages do`,
    );
  if (model.kind === "js") runOnLab(request, model);
  else await runSession(request, model);
}

/** The lab's pass's matrix product: on WebAssembly SIMD, else in plain JavaScript (the same numbers bit for bit). */
let linear: Linear | null = null;
function labLinear(): Linear {
  if (linear) return linear;
  try {
    // 1.5 KB: compiled at once, on this thread (no fetch: the bytes are in this bundle).
    const kernel = new WebAssembly.Instance(new WebAssembly.Module(linearKernelWasm)).exports;
    linear = linearOn(kernel as unknown as LinearKernelExports);
  } catch {
    linear = linearLanes; // no WebAssembly SIMD in this browser
  }
  return linear;
}

/** A router-only graph's forward pass on the lab's own code (no logits, no route override: a full graph has those). */
function runOnLab(request: RunRequest, model: LabModel): void {
  if (request.readNextToken) throw new Error(NO_LOGITS);
  refuseOverrides(request.overrides);
  const started = performance.now();
  const { router, dims } = routerForward(model.graph, request.inputIds, request.batch, request.seq, labLinear());
  const bias = model.graph.expertBias.slice();
  post(
    {
      id: request.id,
      type: "result",
      router,
      dims: [...dims],
      topK: olmoeMini.topK,
      bias,
      backend: "js",
      ms: performance.now() - started,
      fallbackReason: null,
      next: null,
    },
    [router.buffer, bias.buffer],
  );
}

async function runSession(request: RunRequest, model: SessionModel): Promise<void> {
  const runner = model.runner;
  if (request.readNextToken && !runner.session.outputNames.includes("logits")) throw new Error(NO_LOGITS);
  // A full graph takes the route overrides (the no-override values unless asked); a router-only one takes input_ids alone.
  const { inputIds, batch, seq, overrides } = request;
  const feedsOf = (ort: Ort) => ({
    ...forwardFeeds(ort.Tensor, model.inputNames, overrideShape, inputIds, batch, seq, overrides),
    ...weightFeeds(ort.Tensor, model.weights),
  });
  const started = performance.now();
  let output: ortWasm.InferenceSession.OnnxValueMapType;
  try {
    output = await runner.session.run(feedsOf(runner.ort));
  } catch (error) {
    if (runner.backend !== "webgpu" || !runner.firstRun) throw error;
    // WebGPU failed on its first run: fall back to WASM for good (every checkpoint of this graph with it).
    Object.assign(runner, await openWasm(runner.graph, runner.level), {
      fallbackReason: `WebGPU failed at the first run: ${describe(error)}`,
    });
    output = await runner.session.run(feedsOf(runner.ort));
  }
  runner.firstRun = false;
  const logits = output.logits as ortWasm.Tensor | undefined;
  const next =
    request.readNextToken && logits
      ? nextTokenReadout(logits.data as Float32Array, logits.dims, request.inputIds)
      : null;
  const router = output.router_logits as ortWasm.Tensor;
  const data = new Float32Array(router.data as Float32Array); // own copy, transferable
  // Files exported before the expert_bias output existed route without a bias.
  const biasTensor = output.expert_bias as ortWasm.Tensor | undefined;
  const bias = biasTensor ? new Float32Array(biasTensor.data as Float32Array) : null;
  post(
    {
      id: request.id,
      type: "result",
      router: data,
      dims: [...router.dims],
      topK: olmoeMini.topK,
      bias,
      backend: runner.backend,
      ms: performance.now() - started,
      fallbackReason: runner.fallbackReason,
      next,
    },
    [
      data.buffer,
      ...(bias ? [bias.buffer] : []),
      ...(next ? [next.logProbs.buffer, next.topIds.buffer, next.topLogProbs.buffer] : []),
    ],
  );
}

/**
 * A session on the plain WASM build. For a file that holds its weights, "all"
 * optimisations fold the float16 → float32 casts of the weights once, instead
 * of at every run.
 */
async function openWasm(graph: Uint8Array, level: Optimization): Promise<Pick<Runner, "session" | "ort" | "backend">> {
  const session = await ortWasm.InferenceSession.create(graph, {
    executionProviders: ["wasm"],
    graphOptimizationLevel: level,
    logSeverityLevel: 3,
  });
  return { session, ort: ortWasm, backend: "wasm" };
}

/** A download that delivers no byte for this long is reported as stalled (the file is 8 MB). */
const STALL_MS = 30_000;

async function openCache(): Promise<Cache | null> {
  return "caches" in self ? await caches.open(CACHE).catch(() => null) : null;
}

/** Progress is posted at most this often: the page redraws a progress bar, not a chunk count. */
const PROGRESS_MS = 100;

/**
 * The model's bytes from Cache Storage, or from the network with progress for
 * request `id` (none for a prefetch, whose progress nobody reads: each message
 * is a task on the page's busy main thread, ~90 a checkpoint unthrottled).
 */
async function fetchModel(
  url: string,
  id: number | null,
  lookup: Promise<Response | undefined> = cachedCopy(url),
): Promise<{ bytes: Uint8Array; fromCache: boolean }> {
  const cached = await lookup;
  if (cached) {
    const bytes = new Uint8Array(await cached.arrayBuffer());
    if (id !== null) post({ id, type: "progress", loaded: bytes.byteLength, total: bytes.byteLength, fromCache: true });
    return { bytes, fromCache: true };
  }
  const file = url.split("/").pop();
  const abort = new AbortController();
  let stalled = false;
  let timer = setTimeout(() => {
    stalled = true;
    abort.abort();
  }, STALL_MS);
  const patience = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      stalled = true;
      abort.abort();
    }, STALL_MS);
  };
  try {
    const response = await fetch(url, { signal: abort.signal });
    if (!response.ok || !response.body)
      throw new Error(`the model could not be downloaded (HTTP ${response.status} for ${file})`);
    // A compressed body's announced length is the compressed one's. Where the encoding cannot be
    // seen (another origin's, unless it exposes it), the announced length only sizes the buffer.
    const encoding = response.headers.get("content-encoding");
    const announced =
      encoding && encoding !== "identity" ? null : Number(response.headers.get("content-length")) || null;
    let reported = -Infinity;
    const progress = (loaded: number) => {
      patience();
      const now = performance.now();
      if (id !== null && (now - reported >= PROGRESS_MS || loaded === announced)) {
        reported = now;
        post({ id, type: "progress", loaded, total: announced, fromCache: false });
      }
    };
    const bytes =
      (announced !== null && (await readAnnounced(response.body, announced, progress))) ||
      (await readChunks(response.body, progress));
    // The length checked only where it is known to be the file's: this site's own, not compressed.
    if (response.type === "basic" && announced !== null && bytes.byteLength !== announced)
      throw new Error(
        `the download of ${file} ended after ${bytes.byteLength} of ${announced} bytes; reload the page to try again`,
      );
    return { bytes, fromCache: false };
  } catch (error) {
    if (stalled)
      throw new Error(
        `the download of ${file} stalled: no data arrived for ${STALL_MS / 1000} s; check the connection and reload the page`,
      );
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A body of announced length, read straight into one buffer of that length
 * (a byte stream's "BYOB" reader): no buffer of its own for each piece the
 * network delivers, and no copy of them all at the end. Fresh memory is what
 * reading a checkpoint cost most on the two-core machine, where a page's
 * first touch costs ~15 µs: the worker touched 237 MB during z-loss's live
 * run, 0.9 s of its 1.3 s. A body longer than announced (compressed, from an
 * origin that does not say so) goes on into a buffer twice the size; one that
 * ends early is returned as it is, for the caller to report. Null where the
 * body is not a byte stream.
 */
async function readAnnounced(
  body: ReadableStream<Uint8Array>,
  announced: number,
  onRead: (loaded: number) => void,
): Promise<Uint8Array | null> {
  let reader: ReadableStreamBYOBReader;
  try {
    reader = body.getReader({ mode: "byob" });
  } catch {
    return null;
  }
  // Each read hands the buffer over and back (it is transferred): the next read continues in what came back.
  let buffer = new ArrayBuffer(announced);
  let loaded = 0;
  for (;;) {
    if (loaded === buffer.byteLength) {
      // All that was announced is here: one more read, into a byte of its own, finds the end.
      const { done, value } = await reader.read(new Uint8Array(1));
      if (done) return new Uint8Array(buffer);
      const larger = new Uint8Array(buffer.byteLength * 2);
      larger.set(new Uint8Array(buffer));
      larger.set(value!, loaded);
      buffer = larger.buffer;
      loaded += value!.byteLength;
      onRead(loaded);
      continue;
    }
    const { done, value } = await reader.read(new Uint8Array(buffer, loaded, buffer.byteLength - loaded));
    if (value) buffer = value.buffer as ArrayBuffer;
    if (done) return new Uint8Array(buffer, 0, loaded);
    loaded += value!.byteLength;
    onRead(loaded);
  }
}

/** A body read piece by piece as the network delivers it, then joined. */
async function readChunks(body: ReadableStream<Uint8Array>, onRead: (loaded: number) => void): Promise<Uint8Array> {
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let loaded = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    loaded += value.byteLength;
    onRead(loaded);
  }
  const bytes = new Uint8Array(loaded);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
  return bytes;
}

/** This browser's stored copy of `url`, if any (none where Cache Storage is unavailable). */
async function cachedCopy(url: string): Promise<Response | undefined> {
  return (await openCache())?.match(url).catch(() => undefined);
}

async function storeCached(url: string, bytes: Uint8Array): Promise<void> {
  await (
    await openCache()
  )
    ?.put(url, new Response(bytes.slice(), { headers: { "content-type": "application/octet-stream" } }))
    .catch(() => undefined);
}

async function dropCached(url: string): Promise<void> {
  await (await openCache())?.delete(url).catch(() => false);
}

function describe(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split("\n")[0].slice(0, 300);
}
