// The page's handle on the model worker: one promise per request, progress
// through a callback, and a crashed worker turned into an error message.
import type { LoadRequest, WorkerMessage } from "../workers/model-protocol.js";
import { joinWindows } from "../lib/model/windows.js";
import type { LogitsBatch } from "../lib/types.js";

/** What the worker replies to a load and to a forward pass (fields in protocol.ts). */
export type LoadedModel = Omit<Extract<WorkerMessage, { type: "loaded" }>, "type">;
export type ForwardResult = Omit<Extract<WorkerMessage, { type: "result" }>, "type">;

export class ModelClient {
  private worker: Worker;
  private pending: { resolve: (m: WorkerMessage) => void; reject: (e: Error) => void } | null = null;
  onProgress: (loaded: number, total: number | null, fromCache: boolean) => void = () => {};

  constructor(workerUrl: string) {
    this.worker = new Worker(workerUrl, { type: "module" });
    this.worker.onmessage = (event: MessageEvent<WorkerMessage>) => {
      const message = event.data;
      if (message.type === "progress") return this.onProgress(message.loaded, message.total, message.fromCache);
      const pending = this.pending;
      this.pending = null;
      if (!pending) return;
      if (message.type === "error") pending.reject(new Error(message.message));
      else pending.resolve(message);
    };
    this.worker.onerror = (event) => {
      event.preventDefault();
      this.pending?.reject(new Error(`the model worker crashed: ${event.message || "unknown error"}`));
      this.pending = null;
    };
  }

  private request(message: unknown, transfer: Transferable[] = []): Promise<WorkerMessage> {
    if (this.pending) return Promise.reject(new Error("the model is busy with another request"));
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      this.worker.postMessage(message, transfer);
    });
  }

  async load(request: Omit<LoadRequest, "type">): Promise<LoadedModel> {
    const message = await this.request({ type: "load", ...request });
    if (message.type !== "loaded") throw new Error(`unexpected reply ${message.type}`);
    return message;
  }

  async forward(ids: readonly number[]): Promise<ForwardResult> {
    const inputIds = Int32Array.from(ids);
    const message = await this.request({ type: "run", inputIds, batch: 1, seq: ids.length }, [inputIds.buffer]);
    if (message.type !== "result") throw new Error(`unexpected reply ${message.type}`);
    return message;
  }

  terminate(): void {
    this.worker.terminate();
  }
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
 * layer-major, into a batch whose sequences are the inputs. `onSequence`
 * hears before each forward pass, for progress.
 */
export async function routeSequences(
  client: ModelClient,
  sequences: readonly (readonly number[])[],
  onSequence: (index: number, count: number) => void = () => {},
): Promise<RoutedSequences> {
  if (sequences.length === 0) throw new Error("no sequence to route");
  const parts: ForwardResult[] = [];
  let ms = 0;
  for (const [index, ids] of sequences.entries()) {
    onSequence(index, sequences.length);
    const result = await client.forward(ids);
    ms += result.ms;
    parts.push(result);
  }
  const last = parts[parts.length - 1];
  return { ...joinWindows(parts), ms, backend: last.backend, fallbackReason: last.fallbackReason };
}
