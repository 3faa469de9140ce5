// The page's handle on the logits worker (src/lib/io/logits-worker.ts): one
// promise per request, matched by id. Asking about a new file supersedes
// every earlier request: their promises reject with `Superseded` (which pages
// ignore) and any late reply about them is dropped, so an earlier file's
// header, progress or error can never appear under a later file's name.
import type { FileDescription, LogitsWorkerMessage, LogitsWorkerRequest } from "../workers/logits-protocol.js";

export type Summarized = Omit<Extract<LogitsWorkerMessage, { type: "summarized" }>, "type" | "id">;
type SummarizeRequest = Omit<Extract<LogitsWorkerRequest, { type: "summarize" }>, "type" | "id">;
/** Omit distributed over a union, so each request keeps its own fields. */
type WithoutId<T> = T extends unknown ? Omit<T, "id"> : never;
type Pending = {
  resolve: (m: LogitsWorkerMessage) => void;
  reject: (e: Error) => void;
  onProgress?: (done: number, total: number) => void;
};

export class Superseded extends Error {
  constructor() {
    super("superseded by a newer request");
    this.name = "Superseded";
  }
}

export class LogitsClient {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private lastId = 0;

  constructor(workerUrl: string) {
    this.worker = new Worker(workerUrl, { type: "module" });
    this.worker.onmessage = (event: MessageEvent<LogitsWorkerMessage>) => {
      const message = event.data;
      const pending = this.pending.get(message.id);
      if (!pending) return; // a reply to a superseded request
      if (message.type === "progress") return pending.onProgress?.(message.done, message.total);
      this.pending.delete(message.id);
      if (message.type === "error") pending.reject(new Error(message.message));
      else pending.resolve(message);
    };
    this.worker.onerror = (event) => {
      event.preventDefault();
      for (const pending of this.pending.values())
        pending.reject(new Error(`the parsing worker crashed: ${event.message || "unknown error"}`));
      this.pending.clear();
    };
  }

  private request(
    message: WithoutId<LogitsWorkerRequest>,
    onProgress?: Pending["onProgress"],
  ): Promise<LogitsWorkerMessage> {
    const id = ++this.lastId;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onProgress });
      this.worker.postMessage({ ...message, id });
    });
  }

  /** Reads a file's header; supersedes every earlier request. */
  async inspect(file: Blob, name: string): Promise<FileDescription> {
    for (const pending of this.pending.values()) pending.reject(new Superseded());
    this.pending.clear();
    const message = await this.request({ type: "inspect", file, name });
    if (message.type !== "described") throw new Error(`unexpected reply ${message.type}`);
    return message.file;
  }

  /** Streams every row of the last inspected file into a routing summary and a bias replay. */
  async summarize(request: SummarizeRequest, onProgress?: (done: number, total: number) => void): Promise<Summarized> {
    const message = await this.request({ type: "summarize", ...request }, onProgress);
    if (message.type !== "summarized") throw new Error(`unexpected reply ${message.type}`);
    const { type: _type, id: _id, ...result } = message;
    return result;
  }

  terminate(): void {
    this.worker.terminate();
  }
}
