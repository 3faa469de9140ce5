/**
 * Messages between the page and the model worker. The worker runs the
 * forward passes (the lab's own for router-only graphs, onnxruntime-web's
 * sessions for the rest), so a slow one never freezes the page.
 * One worker serves a whole page: it compiles onnxruntime's WASM once (when a
 * page needs it), holds every checkpoint the page opened (keyed by the model's
 * URL) and one session per graph, which the checkpoints' weights are fed to.
 * Every request carries an id that its replies (progress included) repeat.
 */
import type { NextTokenReadout, RouteOverrides } from "../lib/model/route-overrides.js";

/**
 * What computed a result: onnxruntime-web on WebGPU or on WASM, or "js", the
 * lab's own forward pass of a router-only graph (src/lib/model/router-forward.ts).
 */
export type Backend = "webgpu" | "wasm" | "js";
export type BackendPreference = "auto" | "wasm" | "webgpu";

export interface LoadRequest {
  type: "load";
  id: number;
  /** The checkpoint's file; loading a URL that is already open answers at once. */
  modelUrl: string;
  /**
   * URLs of onnxruntime-web's glue module and WASM binary, served by the site:
   * the plain SIMD build for the WASM backend, and the asyncify build that the
   * WebGPU bundle needs (it is several times slower when it runs on the CPU).
   */
  wasmPaths: { wasm: { mjs: string; wasm: string }; webgpu: { mjs: string; wasm: string } };
  /**
   * "auto": a router-only graph on the lab's own forward pass ("js": its
   * answer comes before onnxruntime-web would have started), any other graph
   * on WebGPU when a hardware adapter is offered, WASM otherwise (a
   * software adapter such as SwiftShader is slower than WASM: 165 s against
   * 9 s for the granularity page); "wasm": onnxruntime-web, never WebGPU
   * (the page's `?ep=wasm`); "webgpu": onnxruntime-web on any adapter,
   * software included (`?ep=webgpu`).
   */
  backend: BackendPreference;
}

export interface RunRequest {
  type: "run";
  id: number;
  /** Which open session runs it. */
  modelUrl: string;
  /** Token ids, batch × seq, row-major; seq at most OLMoE-mini's context (a longer sequence is refused). */
  inputIds: Int32Array;
  batch: number;
  seq: number;
  /** A forced route, a perturbation of the router inputs, bfloat16 router inputs (full graphs only). */
  overrides?: RouteOverrides;
  /** Also read the next-token log-probabilities and top predictions (full graphs only; the logits stay in the worker). */
  readNextToken?: boolean;
}

/**
 * Download a checkpoint ahead of its load (a page that will open several asks
 * for the later ones at once): prefetches download side by side, beside the
 * load queue, so a checkpoint is opened while the next files download. No reply.
 */
export interface PrefetchRequest {
  type: "prefetch";
  id: number;
  modelUrl: string;
}

/**
 * Drop the forward pass `id` if it has not started: its answer is nobody's any
 * more (the reader chose another sample while it waited in the queue). No
 * answer, to this or to the dropped request.
 */
export interface CancelRequest {
  type: "cancel";
  id: number;
}

export type WorkerRequest = LoadRequest | RunRequest | PrefetchRequest | CancelRequest;

export type WorkerMessage = { id: number } & (
  | { type: "progress"; loaded: number; total: number | null; fromCache: boolean }
  | {
      type: "loaded";
      backend: Backend;
      fallbackReason: string | null;
      /** The checkpoint's load, from the request that first opened it (a load of an open checkpoint answers at once, with this). */
      loadMs: number;
      fromCache: boolean;
      bytes: number;
    }
  | {
      type: "result";
      /** router_logits, layers × batch × seq × experts. */
      router: Float32Array;
      dims: number[];
      /** Experts per token: the model's top-k (src/lib/model/olmoe-mini.json). */
      topK: number;
      /** expert_bias, layers × experts: the loss-free checkpoint's selection bias (zeros for the others; null for files without it). */
      bias: Float32Array | null;
      backend: Backend;
      ms: number;
      fallbackReason: string | null;
      /** When asked (`readNextToken`): log p(next input token) and the top predictions per position. */
      next: NextTokenReadout | null;
    }
  | { type: "error"; stage: "load" | "run"; message: string }
);
