// The playground in headless Chromium: OLMoE-mini on WASM gives exactly the
// losses that onnxruntime-node + the library give in Node for the same text;
// failures (no model, empty text) end in a message; WebGPU is tried through
// SwiftShader and compared with WASM.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import type { Page, Route } from "playwright-core";
import * as ort from "onnxruntime-node";
import { launch, testTimeout, watchProblems } from "../../tools/chromium.js";
import { eventually } from "./eventually.js";
import { root, scratchDir, useBuiltSite } from "./fixture.js";
import { Tokenizer } from "../../src/lib/model/tokenizer.js";
import { joinWindows, splitIntoWindows } from "../../src/lib/model/windows.js";
import { lossDescriptors, lossName, lossRecord, lossByName } from "../../src/lib/losses/index.js";
import { summarizeBatch } from "../../src/lib/summary.js";
import { sampleSequences } from "../../src/lib/model/sample-sequences.js";
import { olmoeMini } from "../../src/lib/model/olmoe-mini.js";
import { forwardFeeds, overrideShapeOf } from "../../src/lib/model/route-overrides.js";

const models = existsSync(`${root}data/models`)
  ? readdirSync(`${root}data/models`)
      .filter((f) => f.endsWith(".onnx"))
      .sort()
  : [];
const order = olmoeMini.checkpoints;
const first = order.find((s) => models.includes(`${s}.onnx`));
const skip = first ? false : "no OLMoE-mini checkpoint in data/models yet";
const lossNames = lossDescriptors.map(lossName);

const built = useBuiltSite({ webgpu: true });

async function displayedLosses(page: Page): Promise<Record<string, number>> {
  await page.waitForSelector("[data-testid='loss-lbl.switch']");
  const out: Record<string, number> = {};
  for (const name of lossNames) out[name] = Number(await page.getByTestId(`loss-${name}`).textContent());
  return out;
}

async function nodeLosses(
  text: string,
  windows?: number[][],
  microBatch = 1,
  checkpoint = first,
  { ignoreBias = false } = {},
): Promise<Record<string, number>> {
  const tokenizer = new Tokenizer(JSON.parse(readFileSync(`${root}data/tokenizer.json`, "utf8")));
  const session = await ort.InferenceSession.create(`${root}data/models/${checkpoint}.onnx`);
  const parts = [];
  for (const window of windows ?? splitIntoWindows(tokenizer.encode(text), 256)) {
    const out = await session.run(
      forwardFeeds(ort.Tensor, session.inputNames, overrideShapeOf(olmoeMini), window, 1, window.length),
    );
    parts.push({
      router: out.router_logits.data as Float32Array,
      dims: out.router_logits.dims,
      topK: olmoeMini.topK,
      bias: (out.expert_bias?.data as Float32Array | undefined) ?? null,
    });
  }
  const { selectionBias, ...unbiased } = joinWindows(parts);
  const record = lossRecord(summarizeBatch(ignoreBias ? unbiased : { ...unbiased, selectionBias }), microBatch);
  return Object.fromEntries(lossNames.map((n) => [n, lossByName(record, n)]));
}

const sampleText = () =>
  (JSON.parse(readFileSync(`${root}src/assets/samples.json`, "utf8")) as Record<string, string>).python.slice(0, 900);

for (const [query, backend] of [
  ["?ep=wasm", "WASM"],
  ["", "JavaScript"], // the lab's own forward pass of the router-only graph
] as const)
  test(
    `${backend} in the page gives the losses onnxruntime-node + the library give in Node`,
    { skip, timeout: testTimeout },
    async () => {
      const page = await built.browser.newPage();
      const problems = watchProblems(page);
      await page.goto(`${built.site.url}playground${query}`);
      const shown = await displayedLosses(page);
      assert.equal(await page.getByTestId("backend").textContent(), backend);
      const expected = await nodeLosses(sampleText());
      for (const name of lossNames)
        assert.ok(
          Math.abs(shown[name] - expected[name]) <= 2e-4,
          `${name}: page ${shown[name]} vs node ${expected[name]}`,
        );
      assert.ok((await page.locator("[data-testid=tokens] .token").count()) > 100, "tokens coloured");
      assert.deepEqual(problems, []);
      await page.close();
    },
  );

const lossFree = models.includes("loss-free.onnx") ? false : "no loss-free checkpoint in data/models yet";
test(
  "loss-free checkpoint: the page routes by p + its expert bias, as onnxruntime-node + the library do",
  { skip: lossFree, timeout: testTimeout },
  async () => {
    const page = await built.browser.newPage();
    const problems = watchProblems(page);
    await page.goto(`${built.site.url}playground?ep=wasm`);
    await displayedLosses(page);
    await page
      .locator("form", { has: page.locator("label", { hasText: "checkpoint" }) })
      .locator("select")
      .selectOption({ label: "loss-free" });
    await page.waitForFunction(() => /loss-free<\/strong> loaded/.test(document.body.innerHTML), undefined);
    const expected = await nodeLosses(sampleText(), undefined, 1, "loss-free");
    // the losses cell re-runs once the new checkpoint has routed the text: wait for its numbers
    await eventually(async () => {
      const shown = await displayedLosses(page);
      for (const name of lossNames)
        assert.ok(
          Math.abs(shown[name] - expected[name]) <= 2e-4,
          `${name}: page ${shown[name]} vs node ${expected[name]}`,
        );
    });
    // and the bias matters: without it the loads (hence MaxVio) would differ
    const unbiased = (await nodeLosses(sampleText(), undefined, 1, "loss-free", { ignoreBias: true }))[
      "max_vio.global"
    ];
    assert.ok(
      Math.abs(unbiased - expected["max_vio.global"]) > 1e-3,
      `MaxVio with bias ${expected["max_vio.global"]} vs without ${unbiased}`,
    );
    assert.deepEqual(problems, []);
    await page.close();
  },
);

test(
  "empty text and text beyond the context get a message; the page keeps working",
  { skip, timeout: testTimeout },
  async () => {
    const page = await built.browser.newPage();
    const problems = watchProblems(page);
    await page.goto(`${built.site.url}playground?ep=wasm`);
    await displayedLosses(page);
    const area = page.locator("textarea");
    await area.fill("   ");
    await page.getByRole("button", { name: "Route", exact: true }).click();
    await page.waitForSelector("[data-testid=route-message]");
    assert.match((await page.getByTestId("route-message").textContent()) ?? "", /Type or paste some text/);
    assert.equal(await page.getByTestId("losses").count(), 0, "no stale losses from the previous text");
    await area.fill("🧪 mixed scripts: 混合 العربية ".repeat(40));
    await page.getByRole("button", { name: "Route", exact: true }).click();
    await page.waitForSelector("[data-testid=routed-summary]");
    assert.match((await page.getByTestId("routed-summary").textContent()) ?? "", /routed as \d+ windows/);
    assert.deepEqual(problems, []);
    await page.close();
  },
);

test(
  "the model worker starts from the HTML, before the page's modules, and the page adopts it: one worker, one wasm",
  { skip, timeout: testTimeout },
  async () => {
    const fresh = await launch();
    const page = await fresh.newPage();
    const problems = watchProblems(page);
    const requests: string[] = [];
    const workers: string[] = [];
    page.on("request", (r) => requests.push(r.url()));
    page.on("worker", (w) => workers.push(w.url()));
    await page.goto(`${built.site.url}playground?ep=wasm`);
    await displayedLosses(page);
    const index = (pattern: RegExp) => requests.findIndex((url) => pattern.test(url));
    assert.ok(index(/model-worker\.[0-9a-f]+\.js$/) >= 0, "the worker was requested");
    assert.ok(
      index(/model-worker\.[0-9a-f]+\.js$/) < index(/components\/olmoe-assets\.[0-9a-f]+\.js$/),
      "the worker was requested before the module that names it",
    );
    assert.equal(workers.filter((url) => /model-worker/.test(url)).length, 1, workers.join(", "));
    assert.equal(requests.filter((url) => url.endsWith(".wasm")).length, 1, "onnxruntime's wasm fetched once");
    assert.equal(await page.evaluate("'__olmoeEarlyWorker' in window"), false, "the page adopted the early worker");
    assert.deepEqual(problems, []);
    await fresh.close();
  },
);

test("a model worker that cannot start ends in a message, not a wait", { skip, timeout: testTimeout }, async () => {
  const fresh = await launch();
  await fresh.route("**/model-worker.*.js", (route) => route.fulfill({ status: 404, body: "gone" }));
  const page = await fresh.newPage();
  await page.goto(`${built.site.url}playground?ep=wasm`);
  await page.getByTestId("model-error").waitFor();
  assert.match((await page.getByTestId("model-error").textContent()) ?? "", /could not be loaded: the model worker/);
  await fresh.close();
});

test("a model that fails to download ends in a message, not a crash", { skip, timeout: testTimeout }, async () => {
  // A fresh profile: the shared one may hold the model in Cache Storage already.
  const fresh = await launch();
  // context-level routing reaches the worker's fetch too
  await fresh.route("**/*.onnx", (route) => route.fulfill({ status: 404, body: "gone" }));
  const page = await fresh.newPage();
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(`${built.site.url}playground?ep=wasm`);
  await page.waitForSelector("[data-testid=model-error]");
  assert.match(
    (await page.getByTestId("model-error").textContent()) ?? "",
    /could not be loaded: the model could not be downloaded \(HTTP 404/,
  );
  assert.ok(await page.locator("select").first().isEnabled(), "controls still usable");
  assert.deepEqual(errors, []);
  await fresh.close();
});

test("a corrupt model file ends in a message, not a crash", { skip, timeout: testTimeout }, async () => {
  const fresh = await launch();
  await fresh.route("**/*.onnx", (route) =>
    route.fulfill({
      status: 200,
      contentType: "application/octet-stream",
      body: Buffer.from("this is not an ONNX model".repeat(100)),
    }),
  );
  const page = await fresh.newPage();
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(`${built.site.url}playground?ep=wasm`);
  await page.waitForSelector("[data-testid=model-error]");
  assert.match((await page.getByTestId("model-error").textContent()) ?? "", /could not be loaded/);
  assert.deepEqual(errors, []);
  await fresh.close();
});

test(
  "a corrupt download is not cached: the next visit downloads the real model",
  { skip, timeout: testTimeout },
  async () => {
    const fresh = await launch();
    const corrupt = (route: Route) =>
      route.fulfill({
        status: 200,
        contentType: "application/octet-stream",
        body: Buffer.from("not a model".repeat(500)),
      });
    await fresh.route("**/*.onnx", corrupt);
    const page = await fresh.newPage();
    await page.goto(`${built.site.url}playground?ep=wasm`);
    await page.waitForSelector("[data-testid=model-error]");
    assert.match((await page.getByTestId("model-error").textContent()) ?? "", /not a model this page can run/);
    await fresh.unroute("**/*.onnx", corrupt);
    await page.reload();
    await page.waitForSelector("[data-testid=backend], [data-testid=model-error]");
    assert.equal(await page.getByTestId("model-error").count(), 0, "the corrupt bytes were cached");
    assert.equal(await page.getByTestId("backend").textContent(), "WASM");
    await fresh.close();
  },
);

test("a stalled model download says so instead of waiting forever", { skip, timeout: testTimeout }, async () => {
  const fresh = await launch();
  await fresh.route("**/*.onnx", () => {
    /* never answered: the download stalls */
  });
  const page = await fresh.newPage();
  await page.goto(`${built.site.url}playground?ep=wasm`);
  await page.waitForSelector("[data-testid=model-error]");
  assert.match((await page.getByTestId("model-error").textContent()) ?? "", /stalled: no data arrived for 30 s/);
  assert.ok(await page.locator("select").first().isEnabled(), "controls still usable");
  await fresh.close();
});

test(
  "the playground routes on the lab's own forward pass unless asked; ?ep=webgpu forces a software adapter and routes like WASM",
  { skip, timeout: testTimeout },
  async (t) => {
    // The router-only graph runs on the lab's own pass (a full graph never takes this Chromium's
    // software adapter on its own: model-worker.test.ts).
    const auto = await built.browser.newPage();
    await auto.goto(`${built.site.url}playground`);
    await auto.waitForSelector("[data-testid=backend], [data-testid=model-error]");
    assert.equal(await auto.getByTestId("backend").textContent(), "JavaScript");
    await auto.getByTestId("routed-summary").waitFor();
    assert.match((await auto.getByTestId("routed-summary").textContent()) ?? "", / ms on JavaScript\.$/);
    await auto.close();

    // This Chromium offers WebGPU only through SwiftShader (a software adapter).

    const page = await built.browser.newPage();
    await page.goto(`${built.site.url}playground?ep=webgpu`);
    await page.waitForSelector("[data-testid=backend], [data-testid=model-error]");
    const backend = await page
      .getByTestId("backend")
      .textContent()
      .catch(() => null);
    if (backend !== "WebGPU") {
      const status = await page.getByTestId("model-status").textContent();
      t.skip(`no WebGPU in this Chromium: ${status?.trim()}`);
      await page.close();
      return;
    }
    const gpu = await displayedLosses(page);
    const expected = await nodeLosses(sampleText());
    // Quantities smooth in the logits must agree closely. Those that count top-8
    // choices (loads, MaxVio, and f inside the LBLs) may differ by the few
    // near-tie tokens whose choice flips under WebGPU's float rounding.
    const smooth = ["z_loss.st_moe", "z_loss.olmoe", "cv2.importance"];
    for (const name of lossNames) {
      const tolerance = smooth.includes(name)
        ? 1e-3 * Math.max(1, Math.abs(expected[name]))
        : 0.03 * Math.max(1, Math.abs(expected[name]));
      assert.ok(
        Math.abs(gpu[name] - expected[name]) <= tolerance,
        `${name}: WebGPU ${gpu[name]} vs WASM/node ${expected[name]}`,
      );
    }
    console.log(
      "WebGPU via SwiftShader:",
      Object.entries(gpu)
        .map(([k, v]) => `${k} ${v} (node ${expected[k].toFixed(4)})`)
        .join("; "),
    );
    await page.close();
  },
);

test(
  "granularity page: OLMoE-mini's sample batch, routed live, gives the library's LBLs from onnxruntime-node",
  { skip, timeout: testTimeout },
  async () => {
    const page = await built.browser.newPage();
    const problems = watchProblems(page);
    await page.goto(`${built.site.url}granularity`);
    // the build-time numbers first; the live run starts when the section is in view
    await page.waitForSelector("[data-testid=real-micro]");
    await page.getByTestId("real-anchor").scrollIntoViewIfNeeded();
    await page.waitForSelector("[data-testid=real-granularity][data-source=live]");
    const tokenizer = new Tokenizer(JSON.parse(readFileSync(`${root}data/tokenizer.json`, "utf8")));
    const samples = JSON.parse(readFileSync(`${root}src/assets/samples.json`, "utf8"));
    const windows = sampleSequences(tokenizer, samples).map((s) => s.ids);
    for (const m of [1, 4]) {
      if (m !== 1)
        await page
          .locator("form", { has: page.locator("label", { hasText: "micro-batch of real sequences" }) })
          .locator("input[type=range]")
          .fill(String(m));
      const expected = await nodeLosses("", windows, m);
      await eventually(async () => {
        for (const [id, name] of [
          ["real-switch", "lbl.switch"],
          ["real-sequence", "lbl.sequence"],
          ["real-micro", "lbl.micro_batch"],
          ["real-global", "lbl.global"],
        ] as const) {
          const shown = Number(await page.getByTestId(id).textContent());
          assert.ok(
            Math.abs(shown - expected[name]) <= 2e-4,
            `m=${m} ${name}: page ${shown} vs node ${expected[name]}`,
          );
        }
      });
    }
    assert.deepEqual(problems, []);
    await page.close();
  },
);

// A valid ONNX model that has no router_logits output (made with python3-onnx, as the recipe's tools).
const noRouterModel = (() => {
  const path = join(scratchDir("moe-lab-onnx-"), "no-router.onnx");
  const script = [
    "import onnx, sys",
    "from onnx import helper, TensorProto",
    "x = helper.make_tensor_value_info('input_ids', TensorProto.INT64, [1, 'seq'])",
    "y = helper.make_tensor_value_info('logits', TensorProto.FLOAT, [1, 'seq'])",
    "graph = helper.make_graph([helper.make_node('Cast', ['input_ids'], ['logits'], to=TensorProto.FLOAT)], 'no_router', [x], [y])",
    "onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)], ir_version=8), sys.argv[1])",
  ].join("\n");
  const made = spawnSync("/usr/bin/python3", ["-c", script, path], { encoding: "utf8" });
  return made.status === 0 ? path : null;
})();

test(
  "a model without router_logits says so",
  {
    skip: skip || (noRouterModel ? false : "python3-onnx is not installed to make the test model"),
    timeout: testTimeout,
  },
  async () => {
    const fresh = await launch();
    await fresh.route("**/*.onnx", (route) =>
      route.fulfill({ status: 200, contentType: "application/octet-stream", body: readFileSync(noRouterModel!) }),
    );
    const page = await fresh.newPage();
    await page.goto(`${built.site.url}playground?ep=wasm`);
    await page.waitForSelector("[data-testid=model-error]");
    assert.match(
      (await page.getByTestId("model-error").textContent()) ?? "",
      /no router_logits output \(its outputs: logits\)/,
    );
    await fresh.close();
  },
);

test(
  "the d3 token → expert flow: a link per token, layer and chosen expert; hover follows one token's path, a brush a span's",
  { skip, timeout: testTimeout },
  async () => {
    const page = await built.browser.newPage();
    const problems = watchProblems(page);
    await page.goto(`${built.site.url}playground?ep=wasm`);
    const flow = page.getByTestId("route-flow");
    await flow.waitFor();
    await flow.scrollIntoViewIfNeeded();
    const { layers, topK } = olmoeMini;
    const tokens = await flow.locator("text.flow-token").count();
    assert.equal(tokens, 40, "a span of 40 tokens");
    assert.equal(await flow.locator("path.flow-link").count(), layers * tokens * topK);
    assert.equal(await flow.locator("rect.flow-expert").count(), layers * olmoeMini.experts);
    await flow.locator("text.flow-token").nth(5).hover();
    assert.equal(
      await flow.locator("path.flow-link.active").count(),
      layers * topK,
      "one token's path: k links per layer",
    );
    await page.mouse.move(0, 0);
    assert.equal(await flow.locator("path.flow-link.active").count(), 0, "leaving the token clears it");
    // drag down the token column's left edge, over about a third of the tokens
    const box = (await flow.boundingBox())!;
    await page.mouse.move(box.x + 8, box.y + box.height * 0.3);
    await page.mouse.down();
    await page.mouse.move(box.x + 8, box.y + box.height * 0.6, { steps: 5 });
    await page.mouse.up();
    const brushed = await flow.locator("text.flow-token[font-weight=bold]").count();
    assert.ok(brushed > 3 && brushed < tokens, `${brushed} tokens brushed`);
    assert.equal(await flow.locator("path.flow-link.active").count(), brushed * layers * topK);
    assert.deepEqual(problems, []);
    await page.close();
  },
);
