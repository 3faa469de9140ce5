// The page's handle on the logits workers (src/workers/logits-worker.ts): one
// promise per request, matched by id. Asking about a new file supersedes
// every earlier request: their promises reject with `Superseded` (which pages
// ignore) and any late reply about them is dropped, so an earlier file's
// header, progress or error can never appear under a later file's name.
//
// A streamed file with several layers is summarised by several workers at
// once, one shard of layers each (the pass is CPU-bound: one core reads about
// 80 MB/s), and their answers merged exactly (logits-shards.ts).
import type { FileDescription, LogitsWorkerMessage, LogitsWorkerRequest } from "../workers/logits-protocol.js";
import { mergeSummarized, shardsWithin, type Summarized } from "../workers/logits-shards.js";
import { layerShards, summaryBytes, type LayerRange } from "../lib/summary.js";

/** The most the shards' summaries and their merge may hold together (one worker's summary may hold 1 GiB on its own). */
const SHARDED_SUMMARY_BYTES = 512 * 2 ** 20;

export type { Summarized };
type SummarizeRequest = Omit<Extract<LogitsWorkerRequest, { type: "summarize" }>, "type" | "id" | "layers">;
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

/** One worker: requests by id, replies to superseded requests dropped. */
class WorkerClient {
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

  request(message: WithoutId<LogitsWorkerRequest>, onProgress?: Pending["onProgress"]): Promise<LogitsWorkerMessage> {
    const id = ++this.lastId;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onProgress });
      this.worker.postMessage({ ...message, id });
    });
  }

  /** Rejects every pending request with Superseded and tells the worker to drop what it is doing. */
  cancel(): void {
    for (const pending of this.pending.values()) pending.reject(new Superseded());
    this.pending.clear();
    this.worker.postMessage({ type: "cancel", id: ++this.lastId } satisfies LogitsWorkerRequest);
  }

  terminate(): void {
    this.worker.terminate();
  }
}

/** How many workers a file may be split over: the cores the browser reports, at most 4. */
export function defaultShardWorkers(): number {
  const cores = typeof navigator === "undefined" ? 1 : (navigator.hardwareConcurrency ?? 1);
  return Math.max(1, Math.min(4, cores));
}

export class LogitsClient {
  private readonly workers: WorkerClient[];
  /** How many workers have read the last inspected file's header (the first of them). */
  private readers = 0;
  /** The last inspected file: its layers, and the memory its shards' summaries would take. */
  private description: FileDescription | null = null;

  constructor(workerUrl: string, workers = defaultShardWorkers()) {
    // All of them now, with the page: once a file is chosen, nothing is fetched (the page
    // promises that nothing goes over the network while a file is read).
    this.workers = Array.from({ length: workers }, () => new WorkerClient(workerUrl));
  }

  /** Reads a file's header (in every worker that will read a shard of it); supersedes every earlier request. */
  async inspect(file: Blob, name: string): Promise<FileDescription> {
    for (const w of this.workers) w.cancel();
    this.readers = 0;
    this.description = null;
    const message = await this.workers[0].request({ type: "inspect", file, name });
    if (message.type !== "described") throw new Error(`unexpected reply ${message.type}`);
    const description = message.file;
    // A file read whole lives in one worker; a streamed one is read by up to one worker per layer.
    const readers = description.whole ? 1 : Math.min(this.workers.length, description.layers);
    const others = await Promise.all(
      this.workers.slice(1, readers).map((w) => w.request({ type: "inspect", file, name })),
    );
    if (others.some((m) => m.type !== "described")) throw new Error("a worker could not read the file's header");
    this.readers = readers;
    this.description = description;
    return description;
  }

  /**
   * The shards to summarise with: each worker's summary holds every layer's
   * sums (zero outside its own), so a file cut into many sequences reads over
   * fewer workers, as many as fit SHARDED_SUMMARY_BYTES with the merged copy.
   */
  private shardsFor(description: FileDescription, request: SummarizeRequest): LayerRange[] {
    const sequences = request.sequenceLengths?.length ?? description.sequenceLengths?.length ?? 1;
    const count = shardsWithin(this.readers, summaryBytes(description, sequences), SHARDED_SUMMARY_BYTES);
    return layerShards(description.layers, count);
  }

  /** Streams every row of the last inspected file into a routing summary and a bias replay. */
  async summarize(request: SummarizeRequest, onProgress?: (done: number, total: number) => void): Promise<Summarized> {
    if (!this.description) throw new Error("no file has been read yet");
    const shards = this.shardsFor(this.description, request);
    const progress = shards.map(() => ({ done: 0, total: 0 }));
    const settled = await Promise.allSettled(
      shards
        .map(async (layers, i) => {
          const message = await this.workers[i].request({ type: "summarize", ...request, layers }, (done, total) => {
            progress[i] = { done, total };
            onProgress?.(
              progress.reduce((n, p) => n + p.done, 0),
              progress.reduce((n, p) => n + p.total, 0),
            );
          });
          if (message.type !== "summarized") throw new Error(`unexpected reply ${message.type}`);
          const { type: _type, id: _id, ...result } = message;
          return result;
        })
        .map((answer, i) =>
          // A failed shard stops the later ones (their errors could only be later in the file); the
          // earlier ones go on, so the error shown is the file's first, as one worker would report it.
          answer.catch((error) => {
            for (let j = i + 1; j < shards.length; j++) this.workers[j].cancel();
            throw error;
          }),
        ),
    );
    const failed = settled.find((s) => s.status === "rejected");
    if (failed) throw failed.reason;
    const parts = settled.map((s) => (s as PromiseFulfilledResult<Summarized>).value);
    return mergeSummarized(parts, shards);
  }

  terminate(): void {
    for (const w of this.workers) w.terminate();
  }
}
