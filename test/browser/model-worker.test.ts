// The built model worker on its own, in an empty page of the site: a router-only
// graph runs on the lab's own forward pass unless onnxruntime-web is asked for,
// fetching no wasm, and agrees with onnxruntime-web's WASM; a forward
// pass cancelled while it waits in the queue is dropped there (the one behind
// it answers, and it never does), a cancel never drops a load, and a sequence
// longer than the model's context is refused with its reason.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { createServer } from "node:http";
import { gzipSync } from "node:zlib";
import type { AddressInfo } from "node:net";
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

/**
 * Posts `requests` to a fresh model worker in an empty page; its answers (progress aside) until the one to `lastId`,
 * or an error. `fetched`, when given, collects the URLs the page and its worker requested; `downloads`, each
 * checkpoint file's download starting and ending.
 */
async function converse(
  requests: Record<string, unknown>[],
  lastId: number,
  fetched: string[] = [],
  downloads: string[] = [],
): Promise<WorkerMessage[]> {
  const page = await built.browser.newPage();
  page.on("request", (request) => fetched.push(request.url()));
  // Each checkpoint's download as it starts and as it ends, in order.
  const file = (url: string) => url.split("/").pop()!;
  page.on("request", (r) => void (r.url().endsWith(".onnx") && downloads.push(`start ${file(r.url())}`)));
  page.on("requestfinished", (r) => void (r.url().endsWith(".onnx") && downloads.push(`end ${file(r.url())}`)));
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

/** Opening the playground's first checkpoint (its router-only graph) on WASM, or as the pages do ("auto"), as request `id`. */
function loadRequest(id: number, backend: "wasm" | "auto" = "wasm"): Record<string, unknown> {
  const l = links();
  return {
    type: "load",
    id,
    modelUrl: l.model,
    backend,
    wasmPaths: { wasm: { mjs: l["wasm-mjs"], wasm: l.wasm }, webgpu: { mjs: l["webgpu-mjs"], wasm: l["webgpu-wasm"] } },
  };
}

/** The playground's first checkpoint's full graph (LM head and route overrides), as the site serves it. */
function fullGraphUrl(): string {
  const router = new URL(links().model);
  const name = router.pathname.split("/").pop()!.split(".router.")[0];
  const file = readdirSync(`${root}dist/_file/assets/models`).find((f) =>
    new RegExp(`^${name}\\.[0-9a-f]+\\.onnx$`).test(f),
  );
  assert.ok(file, `the full graph of ${name} is in the build`);
  return new URL(file, router).href;
}

/** A forward pass of that checkpoint over `batch` sequences of `seq` tokens, as request `id`. */
function runRequest(id: number, seq = 8, batch = 1): Record<string, unknown> {
  return {
    type: "run",
    id,
    modelUrl: links().model,
    batch,
    seq,
    inputIds: Array.from({ length: batch * seq }, (_, i) => (i * 7919 + 1) % 4096),
  };
}

type Result = Extract<WorkerMessage, { type: "result" }>;

test(
  "a router-only graph runs on the lab's own forward pass, fetching no wasm, and agrees with onnxruntime-web's WASM",
  { skip, timeout: testTimeout },
  async () => {
    const fetched: string[] = [];
    const lab = await converse([loadRequest(1, "auto"), runRequest(2, 100, 3)], 2, fetched);
    const wasm = await converse([loadRequest(1, "wasm"), runRequest(2, 100, 3)], 2);
    assert.deepEqual(
      lab.map((a) => [a.type, "backend" in a ? a.backend : null]),
      [
        ["loaded", "js"],
        ["result", "js"],
      ],
    );
    assert.deepEqual(
      wasm.map((a) => [a.type, "backend" in a ? a.backend : null]),
      [
        ["loaded", "wasm"],
        ["result", "wasm"],
      ],
    );
    assert.deepEqual(
      fetched.filter((url) => /\.wasm$/.test(url)),
      [],
      "onnxruntime's wasm is not fetched",
    );
    const [ours, theirs] = [lab[1] as Result, wasm[1] as Result];
    assert.deepEqual(ours.dims, theirs.dims);
    assert.deepEqual(ours.dims, [olmoeMini.layers, 3, 100, olmoeMini.experts]);
    let difference = 0;
    for (let i = 0; i < ours.router.length; i++)
      difference = Math.max(difference, Math.abs(ours.router[i] - theirs.router[i]));
    assert.ok(difference < 1e-5, `max |Δ router logits| = ${difference}`);
    assert.deepEqual([...ours.bias!], [...theirs.bias!]);
  },
);

test(
  "a full graph runs on onnxruntime-web, never on a software WebGPU adapter unless asked, and says why",
  { skip, timeout: testTimeout },
  async () => {
    // This Chromium offers WebGPU only through SwiftShader (a software adapter), or none.
    const fetched: string[] = [];
    const answers = await converse([{ ...loadRequest(1, "auto"), modelUrl: fullGraphUrl() }], 1, fetched);
    const loaded = answers[0] as Extract<WorkerMessage, { type: "loaded" }>;
    assert.equal(loaded.type, "loaded", JSON.stringify(answers));
    assert.equal(loaded.backend, "wasm", "a software adapter must not be chosen without ?ep=webgpu");
    assert.match(loaded.fallbackReason ?? "", /software one \(SwiftShader\)|has no WebGPU|offered no adapter/);
    assert.equal(fetched.filter((url) => /\.wasm$/.test(url)).length, 1, "onnxruntime's wasm, once");
  },
);

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

test(
  "a checkpoint that opened is kept in Cache Storage once its worker is idle, and the next visit reads it from there",
  { skip, timeout: testTimeout },
  async () => {
    const page = await built.browser.newPage();
    try {
      await openBlankPage(page, built.site.url);
      const answers = await page.evaluate(
        async ({ workerUrl, load }) => {
          const cache = "moe-lab-models-v1";
          await caches.delete(cache); // other tests of this browser may have stored it already
          const answers: WorkerMessage[] = [];
          // Two visits: the first downloads and opens the file, the second should find it cached.
          // (No named function in here: tsx would wrap it in a helper that the page lacks.)
          for (const visit of [1, 2]) {
            const worker = new Worker(workerUrl, { type: "module" });
            answers.push(
              await new Promise<WorkerMessage>((resolve) => {
                worker.onmessage = ({ data }: MessageEvent<WorkerMessage>) => data.type !== "progress" && resolve(data);
                worker.postMessage(load);
              }),
            );
            // Written in the background once the worker has nothing to do: wait until it is there (no fixed delay).
            while (visit === 1 && !(await (await caches.open(cache)).match(load.modelUrl as string)))
              await new Promise((resolve) => setTimeout(resolve, 100));
            worker.terminate();
          }
          return answers;
        },
        { workerUrl: links().worker, load: loadRequest(1, "auto") },
      );
      assert.deepEqual(
        answers.map((a) => [a.type, "fromCache" in a ? a.fromCache : null, "backend" in a ? a.backend : null]),
        [
          ["loaded", false, "js"],
          ["loaded", true, "js"],
        ],
        JSON.stringify(answers),
      );
    } finally {
      await page.close();
    }
  },
);

test(
  "checkpoints asked for ahead download one after another and are read ahead; each load answers with its own numbers",
  { skip, timeout: testTimeout },
  async () => {
    // z-loss's early-model links: the first checkpoint, and the three it asks for ahead.
    const html = readFileSync(`${root}dist/z-loss.html`, "utf8");
    const ahead = [...html.matchAll(/data-early-model="prefetch" href="([^"]+)"/g)].map(
      ([, href]) => new URL(href, built.site.url).href,
    );
    assert.equal(ahead.length, olmoeMini.checkpoints.length - 1, "z-loss asks for the other checkpoints ahead");
    const [b, c] = ahead;
    const on = (modelUrl: string, id: number) => ({ ...runRequest(id, 16, 2), modelUrl });
    // Every file from the network: an earlier test of this browser may have left one in Cache Storage.
    const blank = await built.browser.newPage();
    await openBlankPage(blank, built.site.url);
    await blank.evaluate(() => caches.delete("moe-lab-models-v1"));
    await blank.close();
    const downloads: string[] = [];
    const together = await converse(
      [
        loadRequest(1, "auto"),
        { type: "prefetch", id: 0, modelUrl: b },
        { type: "prefetch", id: 0, modelUrl: c },
        on(links().model, 2),
        // asked for in the other order than ahead: each must find its own file, not the next one read
        { ...loadRequest(3, "auto"), modelUrl: c },
        on(c, 4),
        { ...loadRequest(5, "auto"), modelUrl: b },
        on(b, 6),
      ],
      6,
      [],
      downloads,
    );
    assert.deepEqual(
      together.map((a) => a.type),
      ["loaded", "result", "loaded", "result", "loaded", "result"],
      JSON.stringify(together.find((a) => a.type === "error")),
    );
    const [fileA, fileB, fileC] = [links().model, b, c].map((url) => url.split("/").pop());
    assert.deepEqual(
      downloads,
      [`start ${fileA}`, `end ${fileA}`, `start ${fileB}`, `end ${fileB}`, `start ${fileC}`, `end ${fileC}`],
      "each file once, one after another: the first one, then those asked for ahead in their order",
    );
    const alone = async (modelUrl: string) =>
      ((await converse([{ ...loadRequest(1, "auto"), modelUrl }, on(modelUrl, 2)], 2))[1] as Result).router;
    const [resultC, resultB] = [together[3] as Result, together[5] as Result];
    assert.deepEqual(resultC.router, await alone(c), "c read ahead = c opened by its load");
    assert.deepEqual(resultB.router, await alone(b), "b read ahead = b opened by its load");
    assert.notDeepEqual(resultB.router, resultC.router, "two checkpoints, two answers");
  },
);

test(
  "a checkpoint loads the same with its length announced, sent in pieces with none, or compressed: the worker reads each whole",
  { skip, timeout: testTimeout },
  async () => {
    // The site's server announces each file's length, as GitHub Pages does, and the worker reads such a
    // file into one buffer of that length; another host may send it in pieces with no length, or
    // compressed, where the announced length is the compressed one's.
    const file = readFileSync(`${root}dist/${new URL(links().model).pathname.replace(/^\/[^/]+\//, "")}`);
    const server = createServer((request, response) => {
      const headers = { "access-control-allow-origin": "*", "content-type": "application/octet-stream" };
      if (request.url === "/pieces.onnx") {
        response.writeHead(200, headers); // no length: sent chunked
        for (let at = 0; at < file.length; at += 300_000) response.write(file.subarray(at, at + 300_000));
        response.end();
      } else if (request.url === "/gzip.onnx") {
        const body = gzipSync(file);
        response.writeHead(200, { ...headers, "content-encoding": "gzip", "content-length": body.length }).end(body);
      } else response.writeHead(200, { ...headers, "content-length": file.length }).end(file);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const at = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const answers = [];
      for (const name of ["announced", "pieces", "gzip"]) {
        const modelUrl = `${at}/${name}.onnx`;
        answers.push(
          await converse(
            [
              { ...loadRequest(1, "auto"), modelUrl },
              { ...runRequest(2, 64, 2), modelUrl },
            ],
            2,
          ),
        );
      }
      const site = await converse([loadRequest(1, "auto"), runRequest(2, 64, 2)], 2);
      for (const [i, name] of ["announced", "pieces", "gzip"].entries()) {
        assert.deepEqual(
          answers[i].map((a) => a.type),
          ["loaded", "result"],
          `${name}: ${JSON.stringify(answers[i].find((a) => a.type === "error"))}`,
        );
        assert.deepEqual([...(answers[i][1] as Result).router], [...(site[1] as Result).router], name);
      }
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  },
);
