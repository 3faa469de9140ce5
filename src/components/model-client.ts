// The page's handle on the model worker: one promise per request, progress
// through a callback, and a crashed worker turned into an error message.
import type { LoadRequest, WorkerMessage } from "../workers/model-protocol.js";

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
