// The built model worker on its own, in an empty page of the site: a forward
// pass cancelled while it waits in the queue is dropped there (the one behind
// it answers, and it never does), a cancel never drops a load, and a sequence
// longer than the model's context is refused with its reason.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { openBlankPage, testTimeout } from "../../tools/chromium.js";
import { noCheckpoint, root, useBuiltSite } from "./fixture.js";
import { olmoeMini } from "../../src/lib/model/olmoe-mini.js";
import type { WorkerMessage } from "../../src/workers/model-protocol.js";

const built = useBuiltSite();
const skip = noCheckpoint;

/** The worker, runtime and first checkpoint the playground's early-model links name, resolved against the site. */
function links(): Record<string, string> {
  const html = readFileSync(`${root}dist/playground.html`, "utf8");
  return Object.fromEntries(
    [...html.matchAll(/data-early-model="([\w-]+)" href="([^"]+)"/g)].map(([, name, href]) => [
      name,
      new URL(href, built.site.url).href,
    ]),
  );
}

/** Posts `requests` to a fresh model worker in an empty page; its answers (progress aside) until the one to `lastId`, or an error. */
async function converse(requests: Record<string, unknown>[], lastId: number): Promise<WorkerMessage[]> {
  const page = await built.browser.newPage();
  try {
    await openBlankPage(page, built.site.url);
    return await page.evaluate(
      ({ workerUrl, requests, lastId }) =>
        new Promise<WorkerMessage[]>((resolve) => {
          const answers: WorkerMessage[] = [];
          const worker = new Worker(workerUrl, { type: "module" });
          worker.onmessage = ({ data }: MessageEvent<WorkerMessage>) => {
            if (data.type === "progress") return;
            answers.push(data);
            if (data.id === lastId || data.type === "error") {
              worker.terminate();
              resolve(answers);
            }
          };
          for (const request of requests)
            worker.postMessage(
              request.type === "run"
                ? { ...request, inputIds: Int32Array.from(request.inputIds as number[]) }
                : request,
            );
        }),
      { workerUrl: links().worker, requests, lastId },
    );
  } finally {
    await page.close();
  }
}

/** Opening the playground's first checkpoint on WASM, as request `id`. */
function loadRequest(id: number): Record<string, unknown> {
  const l = links();
  return {
    type: "load",
    id,
    modelUrl: l.model,
    backend: "wasm",
    wasmPaths: { wasm: { mjs: l["wasm-mjs"], wasm: l.wasm }, webgpu: { mjs: l["webgpu-mjs"], wasm: l["webgpu-wasm"] } },
  };
}

/** A forward pass of that checkpoint over `seq` tokens, as request `id`. */
function runRequest(id: number, seq = 8): Record<string, unknown> {
  return {
    type: "run",
    id,
    modelUrl: links().model,
    batch: 1,
    seq,
    inputIds: Array.from({ length: seq }, (_, i) => i + 1),
  };
}

test(
  "a forward pass cancelled while it waits is dropped; a cancelled load is not, and the pass after them answers",
  { skip, timeout: testTimeout },
  async () => {
    // Load 1 takes a download and a compile: both cancels arrive while pass 2 and load 3 still wait
    // behind it (load 3's even before load 3 itself). Answers come in the order asked, so pass 2's
    // would come before load 3's.
    const answers = await converse(
      [
        loadRequest(1),
        runRequest(2),
        { type: "cancel", id: 2 },
        { type: "cancel", id: 3 },
        loadRequest(3),
        runRequest(4),
      ],
      4,
    );
    assert.deepEqual(
      answers.map((a) => [a.id, a.type]),
      [
        [1, "loaded"],
        [3, "loaded"],
        [4, "result"],
      ],
    );
  },
);

test(
  "a sequence longer than OLMoE-mini's context is refused with the reason",
  { skip, timeout: testTimeout },
  async () => {
    const seq = olmoeMini.context + 1;
    const answers = await converse([loadRequest(1), runRequest(2, seq)], 2);
    assert.deepEqual(
      answers.map((a) => [a.id, a.type]),
      [
        [1, "loaded"],
        [2, "error"],
      ],
    );
    const refusal = answers[1] as Extract<WorkerMessage, { type: "error" }>;
    assert.match(
      refusal.message,
      new RegExp(`${seq} tokens is longer than OLMoE-mini's context of ${olmoeMini.context}`),
    );
  },
);
