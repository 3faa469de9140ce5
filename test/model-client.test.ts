// The page's handle on the model worker (src/components/model-client.ts),
// driven against a stand-in worker that records what it is sent and answers
// when told: a forward pass cancelled through its signal rejects at once,
// asks the worker to drop it, and ignores a late answer; a load is never
// cancelled.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ModelClient, loadAndRoute, settleEach } from "../src/components/model-client.js";
import type { WorkerMessage } from "../src/workers/model-protocol.js";

/** Records the requests; `answer` replies as the worker would. */
class StandInWorker {
  sent: Record<string, unknown>[] = [];
  onmessage: ((event: MessageEvent<WorkerMessage>) => void) | null = null;
  onerror: ((event: ErrorEvent) => void) | null = null;
  postMessage(message: Record<string, unknown>): void {
    this.sent.push(message);
  }
  terminate(): void {}
  answer(message: WorkerMessage): void {
    this.onmessage?.({ data: message } as MessageEvent<WorkerMessage>);
  }
  /** The id of the last request of `type`. */
  last(type: string): number {
    return [...this.sent].reverse().find((m) => m.type === type)!.id as number;
  }
}

const result = (id: number): WorkerMessage => ({
  id,
  type: "result",
  router: new Float32Array(3 * 1 * 2 * 4),
  dims: [3, 1, 2, 4],
  topK: 2,
  bias: null,
  backend: "wasm",
  ms: 1,
  fallbackReason: null,
  next: null,
});

const loaded = (id: number): WorkerMessage => ({
  id,
  type: "loaded",
  backend: "wasm",
  fallbackReason: null,
  loadMs: 1,
  fromCache: false,
  bytes: 10,
});

function client(): [ModelClient, StandInWorker] {
  const worker = new StandInWorker();
  return [new ModelClient("model-worker.js", worker as unknown as Worker), worker];
}

test("a forward pass aborted before its answer rejects, is dropped by the worker, and its late answer is ignored", async () => {
  const [model, worker] = client();
  const stale = new AbortController();
  const pass = model.forward("a.onnx", [[1, 2]], { signal: stale.signal });
  const id = worker.last("run");
  stale.abort();
  await assert.rejects(pass, { name: "AbortError" });
  assert.deepEqual(worker.sent.at(-1), { type: "cancel", id });
  worker.answer(result(id)); // the run had started after all: nobody is waiting for it
  // The client still answers the next request.
  const next = model.forward("a.onnx", [[3, 4]]);
  worker.answer(result(worker.last("run")));
  assert.deepEqual((await next).dims, [3, 1, 2, 4]);
});

test("an answer before the abort settles the pass; aborting afterwards sends nothing", async () => {
  const [model, worker] = client();
  const stale = new AbortController();
  const pass = model.forward("a.onnx", [[1, 2]], { signal: stale.signal });
  worker.answer(result(worker.last("run")));
  await pass;
  const sent = worker.sent.length;
  stale.abort();
  assert.equal(worker.sent.length, sent, "no cancel for a pass that has its answer");
});

test("a pass whose signal is already aborted is never sent", async () => {
  const [model, worker] = client();
  await assert.rejects(model.forward("a.onnx", [[1, 2]], { signal: AbortSignal.abort() }), { name: "AbortError" });
  assert.deepEqual(worker.sent, []);
});

test("loadAndRoute's signal cancels the forward pass, never the load", async () => {
  const [model, worker] = client();
  const stale = new AbortController();
  const load = { modelUrl: "a.onnx", wasmPaths: { wasm: { mjs: "", wasm: "" }, webgpu: { mjs: "", wasm: "" } } };
  const routed = loadAndRoute(model, { ...load, backend: "wasm" }, [[1, 2]], { signal: stale.signal });
  routed.catch(() => {});
  const [loadId, runId] = [worker.last("load"), worker.last("run")];
  assert.ok(loadId < runId, "the pass is queued behind the load");
  stale.abort();
  assert.deepEqual(worker.sent.at(-1), { type: "cancel", id: runId });
  assert.equal(worker.sent.filter((m) => m.type === "cancel").length, 1, "the load is not cancelled");
  worker.answer(loaded(loadId));
  await assert.rejects(routed, { name: "AbortError" });
});

test("settleEach: each outcome in order, and whether it is here yet, without waiting", async () => {
  let resolveFirst = (_: number) => {};
  const first = new Promise<number>((resolve) => (resolveFirst = resolve));
  const failed = Promise.reject(new Error("no such checkpoint"));
  const { outcomes, ready } = settleEach([first, failed, Promise.resolve(3)]);
  assert.deepEqual([ready(0), ready(1), ready(2), ready(3)], [false, false, false, false]);
  await outcomes[2];
  // The later ones settled while the first is still awaited: a page takes them without a redraw.
  assert.deepEqual([ready(0), ready(1), ready(2)], [false, true, true]);
  resolveFirst(1);
  assert.deepEqual(await outcomes[0], { value: 1 });
  assert.equal(ready(0), true);
  const { error } = await outcomes[1];
  assert.equal(error?.message, "no such checkpoint");
  assert.deepEqual(await outcomes[2], { value: 3 });
});
