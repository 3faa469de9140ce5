/**
 * The runtime's own share of a page's first live numbers. A page visit
 * records what the page asked its model worker for (recordModelWork: the
 * worker's URL, the checkpoints it opened, the forward passes it ran, with
 * their token ids); then the same built worker does exactly that work in an
 * empty page of the same origin (runtimeFloorVisit), where no module, data
 * file, tokenizer or drawing of the page competes with it. Time from creating
 * the worker to the last forward pass's answer, cold (a fresh browser context
 * each visit).
 *
 * A page's number minus this one is what the page itself adds (its HTML,
 * modules, data and drawing, and starting the worker); this one is what the
 * worker's runtime costs on this machine: downloading and reading the
 * checkpoints, and the first forward passes while V8 compiles the code they
 * meet (on onnxruntime-web, also fetching and compiling its wasm and opening
 * a session).
 */
import type { BrowserContext, Page } from "playwright-core";
import { launch, openBlankPage } from "../tools/chromium.js";
import type { StaticSite } from "../tools/static-server.js";
import type { LoadRequest, RunRequest, WorkerMessage } from "../src/workers/model-protocol.js";

/** What a page asked its model worker for, in order. */
export interface ModelWork {
  workerUrl: string;
  /** Each checkpoint opened, once, in the order first asked (the load requests carry the runtime's URLs). */
  loads: LoadRequest[];
  /** Each forward pass (token ids as a plain array, to cross into and out of the page). */
  runs: RecordedRun[];
}

/** A plain forward pass as the page asked for it; route overrides are not replayed (the first numbers have none). */
type RecordedRun = Pick<RunRequest, "type" | "id" | "modelUrl" | "batch" | "seq" | "readNextToken"> & {
  inputIds: number[];
  overridden: boolean;
};

declare global {
  interface Window {
    __modelWork?: { workerUrl: string | null; requests: unknown[] };
  }
}

/**
 * Records, in every page of `context` opened from now on, the model worker's
 * URL and every load and run posted to it (before the page's own scripts run,
 * so the early-model script's requests are seen too).
 */
export async function recordModelWork(context: BrowserContext): Promise<void> {
  await context.addInitScript(() => {
    const work: NonNullable<Window["__modelWork"]> = { workerUrl: null, requests: [] };
    window.__modelWork = work;
    const NativeWorker = window.Worker;
    window.Worker = class extends NativeWorker {
      constructor(url: string | URL, options?: WorkerOptions) {
        super(url, options);
        const href = new URL(url, location.href).href;
        if (/model-worker/.test(href)) {
          work.workerUrl = href;
          const post = this.postMessage.bind(this) as (message: unknown, options?: unknown) => void;
          this.postMessage = (message: unknown, options?: unknown) => {
            const request = message as Record<string, unknown> & { type?: string };
            if (request?.type === "load") work.requests.push(structuredClone(request));
            if (request?.type === "run") {
              const { type, id, modelUrl, batch, seq, readNextToken, inputIds, overrides } = request;
              const ids = Array.from(inputIds as ArrayLike<number>);
              work.requests.push({
                type,
                id,
                modelUrl,
                batch,
                seq,
                readNextToken,
                inputIds: ids,
                overridden: !!overrides,
              });
            }
            post(message, options);
          };
        }
      }
    };
  });
}

/** The work recorded in `page` so far: each checkpoint's first load, and every run. */
export async function recordedWork(page: Page): Promise<ModelWork> {
  const recorded = await page.evaluate(() => window.__modelWork);
  if (!recorded?.workerUrl) throw new Error("the page started no model worker");
  const requests = recorded.requests as (LoadRequest | RecordedRun)[];
  const loads = requests.filter((r): r is LoadRequest => r.type === "load");
  return {
    workerUrl: recorded.workerUrl,
    loads: loads.filter((load, i) => loads.findIndex((other) => other.modelUrl === load.modelUrl) === i),
    runs: requests.filter((r): r is RecordedRun => r.type === "run"),
  };
}

/** The first `count` forward passes of `work`, and the checkpoints they open. */
export function firstRuns(work: ModelWork, count: number): ModelWork {
  const runs = work.runs.slice(0, count);
  return { ...work, runs, loads: work.loads.filter((load) => runs.some((run) => run.modelUrl === load.modelUrl)) };
}

/** "4 checkpoints, 4 forward passes of 4 × 128 tokens", for a row's note. */
export function describeWork({ loads, runs }: ModelWork): string {
  const shapes = [...new Set(runs.map((r) => `${r.batch} × ${r.seq}`))].join(", ");
  return `${loads.length} checkpoint${loads.length === 1 ? "" : "s"}, ${runs.length} forward pass${runs.length === 1 ? "" : "es"} of ${shapes} tokens`;
}

/** One visit: how long it took, and what each forward pass answered. */
export interface FloorVisit {
  /** From `new Worker` to the last forward pass's answer. */
  ms: number;
  /** Each forward pass's router_logits dimensions (layers × batch × seq × experts), in order. */
  dims: number[][];
  backends: string[];
}

/**
 * `work` done by its model worker alone, in an empty page of `site`'s origin,
 * in a fresh browser: the later checkpoints asked for ahead and every request
 * posted at once, in the recorded order, as the pages queue them.
 */
export async function runtimeFloorVisit(site: StaticSite, work: ModelWork): Promise<FloorVisit> {
  if (!work.runs.length) throw new Error("no forward pass to time");
  if (work.runs.some((run) => run.overridden)) throw new Error("a forward pass with route overrides is not replayed");
  const context = await launch();
  try {
    const page = await context.newPage();
    await openBlankPage(page, site.url);
    return await page.evaluate(
      ({ workerUrl, loads, runs }) =>
        new Promise<FloorVisit>((resolve, reject) => {
          const started = performance.now();
          const worker = new Worker(workerUrl, { type: "module" });
          const ids = new Map<number, number>(); // request id → its place among the runs
          const dims: number[][] = [];
          const backends: string[] = [];
          worker.onerror = (event) => reject(new Error(`the worker failed: ${event.message}`));
          worker.onmessage = ({ data }: MessageEvent<WorkerMessage>) => {
            if (data.type === "error") reject(new Error(`${data.stage}: ${data.message}`));
            if (data.type !== "result") return;
            dims[ids.get(data.id)!] = data.dims;
            backends[ids.get(data.id)!] = data.backend;
            if (dims.filter(Boolean).length === runs.length) {
              resolve({ ms: performance.now() - started, dims, backends });
              worker.terminate();
            }
          };
          for (const load of loads.slice(1)) worker.postMessage({ type: "prefetch", id: 0, modelUrl: load.modelUrl });
          let id = 1;
          const opened = new Set<string>();
          for (const [i, run] of runs.entries()) {
            // Each checkpoint's load just before its first run, as loadAndRoute queues them.
            const load = loads.find((l) => l.modelUrl === run.modelUrl);
            if (load && !opened.has(load.modelUrl)) {
              opened.add(load.modelUrl);
              worker.postMessage({ ...load, id: id++ });
            }
            ids.set(id, i);
            const { overridden: _, ...request } = run;
            worker.postMessage({ ...request, id: id++, inputIds: Int32Array.from(run.inputIds) });
          }
        }),
      work,
    );
  } finally {
    await context.close();
  }
}
