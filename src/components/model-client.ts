// The page's handle on the model worker: one promise per request, progress
// through a callback, and a crashed worker turned into an error message.
import type { LoadRequest, WorkerMessage } from "../workers/model-protocol.js";
import { equalLengthRuns, joinWindows, splitBatch } from "../lib/model/windows.js";
import type { LogitsBatch } from "../lib/types.js";
import type { RouteOverrides } from "../lib/model/route-overrides.js";
import type { Forward } from "../lib/model/counterfactual.js";

/** What the worker replies to a load and to a forward pass (fields in protocol.ts). */
export type LoadedModel = Omit<Extract<WorkerMessage, { type: "loaded" }>, "type" | "id">;
export type ForwardResult = Omit<Extract<WorkerMessage, { type: "result" }>, "type" | "id">;

/** Progress of a checkpoint's download (or its read from this browser's cache). */
export type ProgressListener = (loaded: number, total: number | null, fromCache: boolean) => void;

/**
 * One model worker and the checkpoints it holds. Requests are answered in
 * order; each has an id, so several cells of a page can share the worker
 * (`pageModelClient`): onnxruntime's WASM is fetched and compiled once per page.
 */
export class ModelClient {
  private worker: Worker;
  private nextId = 1;
  private readonly pending = new Map<
    number,
    { resolve: (m: WorkerMessage) => void; reject: (e: Error) => void; onProgress?: ProgressListener }
  >();
  private crashed: Error | null = null;

  /** `worker`: one already started on `workerUrl` (the playground's early start), else a new one. */
  constructor(workerUrl: string, worker?: Worker) {
    this.worker = worker ?? new Worker(workerUrl, { type: "module" });
    this.worker.onmessage = (event: MessageEvent<WorkerMessage>) => {
      const message = event.data;
      const pending = this.pending.get(message.id);
      if (!pending) return;
      if (message.type === "progress") return pending.onProgress?.(message.loaded, message.total, message.fromCache);
      this.pending.delete(message.id);
      if (message.type === "error") pending.reject(new Error(message.message));
      else pending.resolve(message);
    };
    this.worker.onerror = (event) => {
      event.preventDefault();
      this.crashed = new Error(`the model worker crashed: ${event.message || "unknown error"}`);
      for (const pending of this.pending.values()) pending.reject(this.crashed);
      this.pending.clear();
    };
  }

  private request(
    message: Record<string, unknown>,
    {
      transfer = [],
      onProgress,
      signal,
    }: { transfer?: Transferable[]; onProgress?: ProgressListener; signal?: AbortSignal } = {},
  ): Promise<WorkerMessage> {
    if (this.crashed) return Promise.reject(this.crashed);
    if (signal?.aborted) return Promise.reject(cancelledError());
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      // Aborted before its answer: the worker drops it if it has not started, and a late answer finds no one waiting.
      const abort = () => {
        if (!this.pending.delete(id)) return;
        this.worker.postMessage({ type: "cancel", id });
        reject(cancelledError());
      };
      signal?.addEventListener("abort", abort, { once: true });
      const unlisten = () => signal?.removeEventListener("abort", abort);
      this.pending.set(id, {
        resolve: (message) => (unlisten(), resolve(message)),
        reject: (error) => (unlisten(), reject(error)),
        onProgress,
      });
      this.worker.postMessage({ ...message, id }, transfer);
    });
  }

  /** Opens a checkpoint (at once if this worker already holds it). */
  async load(request: Omit<LoadRequest, "type" | "id">, onProgress?: ProgressListener): Promise<LoadedModel> {
    const message = await this.request({ type: "load", ...request }, { onProgress });
    if (message.type !== "loaded") throw new Error(`unexpected reply ${message.type}`);
    return message;
  }

  /**
   * Starts downloading checkpoints the page will open later, one after
   * another, while it opens and runs the first: their loads then find the
   * bytes ready. No answer; a failed download is tried again by its load.
   */
  prefetch(modelUrls: readonly string[]): void {
    if (this.crashed) return;
    for (const modelUrl of modelUrls) this.worker.postMessage({ type: "prefetch", id: this.nextId++, modelUrl });
  }

  /**
   * One forward pass of the checkpoint at `modelUrl` (loaded first) over
   * sequences of one length, as one batch; with a full graph, optionally under
   * route overrides and with the next-token readout.
   */
  async forward(
    modelUrl: string,
    sequences: readonly (readonly number[])[],
    options: { overrides?: RouteOverrides; readNextToken?: boolean; signal?: AbortSignal } = {},
  ): Promise<ForwardResult> {
    if (sequences.length === 0) throw new Error("no sequence to run");
    const seq = sequences[0].length;
    if (sequences.some((ids) => ids.length !== seq)) throw new Error("one forward pass takes sequences of one length");
    const inputIds = Int32Array.from(sequences.flat());
    const { signal, ...runOptions } = options;
    const message = await this.request(
      { type: "run", modelUrl, inputIds, batch: sequences.length, seq, ...runOptions },
      { transfer: [inputIds.buffer], signal },
    );
    if (message.type !== "result") throw new Error(`unexpected reply ${message.type}`);
    return message;
  }

  /** False once the worker crashed or was stopped: `pageModelClient` then starts a new one. */
  get alive(): boolean {
    return this.crashed === null;
  }

  terminate(): void {
    this.worker.terminate();
    this.crashed = new Error("the model worker was stopped");
    const closed = new Error("the model worker was stopped");
    for (const pending of this.pending.values()) pending.reject(closed);
    this.pending.clear();
  }
}

/** What a forward pass cancelled through its signal rejects with (the DOM's name for it: AbortError). */
function cancelledError(): Error {
  return new DOMException("the forward pass was cancelled", "AbortError");
}

const perPage = new Map<string, ModelClient>();

/** A worker that a page's inline script started while the page was parsing (tools/inline/early-model.js). */
interface EarlyWorker {
  url: string;
  worker: Worker | null;
  failed: boolean;
}
declare global {
  interface Window {
    __olmoeEarlyWorker?: EarlyWorker;
    /** Set once the page has its worker, so that a late early start does not make a second. */
    __olmoePageWorker?: boolean;
  }
}

/** The early worker for `workerUrl`, once: unless it failed to start (then the page starts its own, which reports why). */
function adoptEarlyWorker(workerUrl: string): Worker | undefined {
  const early = typeof window === "undefined" ? undefined : window.__olmoeEarlyWorker;
  if (!early || early.url !== workerUrl || !early.worker) return undefined;
  delete window.__olmoeEarlyWorker;
  if (early.failed) {
    early.worker.terminate();
    return undefined;
  }
  early.worker.onerror = null;
  return early.worker;
}

/** The page's one model worker (created on first use, or adopted from the page's early start; a crashed one is replaced). */
export function pageModelClient(workerUrl: string): ModelClient {
  let client = perPage.get(workerUrl);
  if (!client || !client.alive) {
    client = new ModelClient(workerUrl, adoptEarlyWorker(workerUrl));
    perPage.set(workerUrl, client);
    if (typeof window !== "undefined") window.__olmoePageWorker = true;
  }
  return client;
}

/** Sequences routed by OLMoE-mini one after another, joined into one batch (top-k and bias included). */
export interface RoutedSequences extends LogitsBatch {
  readonly sequenceLengths: number[];
  readonly selectionBias?: Float32Array;
  /** Time the worker spent in forward passes, in ms. */
  ms: number;
  backend: ForwardResult["backend"];
  fallbackReason: ForwardResult["fallbackReason"];
}

/**
 * The one loop that runs OLMoE-mini over several sequences (a long text's
 * windows, the sample batch, one sample) and joins their router logits,
 * layer-major, into a batch whose sequences are the inputs.
 */
export async function routeSequences(
  client: ModelClient,
  modelUrl: string,
  sequences: readonly (readonly number[])[],
  { maxBatch = 8, signal }: { maxBatch?: number; signal?: AbortSignal } = {},
): Promise<RoutedSequences> {
  if (sequences.length === 0) throw new Error("no sequence to route");
  // Sequences of one length go in one call (a page's fixed samples: one pass instead of eight).
  const parts: ForwardResult[] = [];
  let ms = 0;
  for (const run of equalLengthRuns(sequences, maxBatch)) {
    const result = await client.forward(
      modelUrl,
      run.map((i) => sequences[i]),
      { signal },
    );
    ms += result.ms;
    for (const part of splitBatch(result))
      parts.push({ ...result, ...part, dims: [...part.dims], bias: part.bias ?? null });
  }
  const last = parts[parts.length - 1];
  return { ...joinWindows(parts), ms, backend: last.backend, fallbackReason: last.fallbackReason };
}

/**
 * Opens a checkpoint and routes `sequences` through it, the forward pass
 * posted right behind the load rather than after the load's answer has come
 * back to the page (the worker answers in order): on a busy page that round
 * trip cost 0.05–0.2 s a checkpoint. A page that routes several checkpoints
 * calls this for each at once, and the worker goes from one to the next
 * without waiting for the page. A failed load rejects with its own reason.
 */
export async function loadAndRoute(
  client: ModelClient,
  load: Omit<LoadRequest, "type" | "id">,
  sequences: readonly (readonly number[])[],
  progress: { onDownload?: ProgressListener; onLoaded?: (loaded: LoadedModel) => void; signal?: AbortSignal } = {},
): Promise<{ loaded: LoadedModel; routed: RoutedSequences }> {
  const loading = client.load(load, progress.onDownload);
  // routeSequences posts its first forward pass before its first await: it is queued right behind the load.
  // The signal cancels the forward passes, never the load: the checkpoint stays open for the next request.
  const routing = routeSequences(client, load.modelUrl, sequences, { signal: progress.signal });
  routing.catch(() => {}); // after a failed load the run fails too: the load's error is the one to report
  const loaded = await loading;
  progress.onLoaded?.(loaded);
  return { loaded, routed: await routing };
}

/** A promise's outcome: its value, or the error it was rejected with. */
export type Settled<T> = { value: T; error?: undefined } | { value?: undefined; error: Error };

/** A promise's outcome as a value, for promises started together and awaited one by one (no unhandled rejection meanwhile). */
export function settle<T>(promise: Promise<T>): Promise<Settled<T>> {
  return promise.then(
    (value) => ({ value }),
    (error: unknown) => ({ error: error instanceof Error ? error : new Error(String(error)) }),
  );
}

/**
 * `settle` for each of `promises`, and whether each has settled yet, read
 * without waiting. A generator cell shows progress before it waits for the
 * next result, and the page redraws it at most once a frame: on a busy page a
 * frame is 50–150 ms, and four results that came together took four frames
 * to show. A result already here is taken without a progress step (`ready`).
 */
export function settleEach<T>(promises: readonly Promise<T>[]): {
  outcomes: Promise<Settled<T>>[];
  ready: (index: number) => boolean;
} {
  const done = promises.map(() => false);
  const outcomes = promises.map((promise, index) =>
    settle(promise).then((outcome) => {
      done[index] = true;
      return outcome;
    }),
  );
  return { outcomes, ready: (index) => done[index] ?? false };
}

/**
 * A `Forward` (src/lib/model/counterfactual.ts) through the page's worker:
 * the full graph at `modelUrl` (loaded first), under route overrides, with the
 * next-token readout. The counterfactual, calibration and consistency views
 * run on it, as the tests run the same code on onnxruntime-node.
 */
export function workerForward(client: ModelClient, modelUrl: string): Forward {
  return async (sequences, overrides) => {
    const result = await client.forward(modelUrl, sequences, { overrides, readNextToken: true });
    if (!result.next) throw new Error("the worker read no next-token predictions");
    return { router: result.router, dims: result.dims, bias: result.bias, next: result.next };
  };
}
