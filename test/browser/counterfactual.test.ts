// The playground's counterfactual, calibration and routing-consistency
// sections in Chromium (WASM), against onnxruntime-node running the same
// library code on the same full graph.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import * as ort from "onnxruntime-node";
import type { Page } from "playwright-core";
import { launch, testTimeout, watchProblems } from "../../tools/chromium.js";
import { eventually } from "./eventually.js";
import { root, useBuiltSite } from "./fixture.js";
import { Tokenizer } from "../../src/lib/model/tokenizer.js";
import { olmoeMini } from "../../src/lib/model/olmoe-mini.js";
import { overrideShapeOf } from "../../src/lib/model/route-overrides.js";
import { sessionForward } from "../../src/lib/model/session-forward.js";
import { forceOneExpert, rankedExperts } from "../../src/lib/model/counterfactual.js";

const checkpoint = olmoeMini.checkpoints[0];
const modelPath = `${root}data/models/${checkpoint}.onnx`;
const skip = existsSync(modelPath) ? false : `${modelPath} not exported yet`;
const built = useBuiltSite();
const k = olmoeMini.topK;

/** The playground's default text (the Python sample's first 900 characters) as token ids. */
function defaultIds(): number[] {
  const tokenizer = new Tokenizer(JSON.parse(readFileSync(`${root}data/tokenizer.json`, "utf8")));
  const samples = JSON.parse(readFileSync(`${root}src/assets/samples.json`, "utf8")) as Record<string, string>;
  return tokenizer.encode(samples.python.slice(0, 900)).slice(0, olmoeMini.context);
}

async function openPlayground(): Promise<{ page: Page; problems: string[] }> {
  const page = await built.browser.newPage();
  const problems = watchProblems(page);
  await page.goto(`${built.site.url}playground?ep=wasm`);
  await page.waitForSelector("[data-testid=routed-summary]");
  return { page, problems };
}

async function setForm(page: Page, values: { layer: string; slot: string; rule: string; expert?: number }) {
  const form = page.locator("main");
  await form.getByLabel("in layer", { exact: true }).selectOption({ label: values.layer });
  await form.getByLabel("replace").selectOption({ label: values.slot });
  await form.getByLabel("with", { exact: true }).selectOption({ label: values.rule });
  if (values.expert !== undefined) await form.getByLabel("expert no.").fill(String(values.expert));
  await form.getByLabel("expert no.").dispatchEvent("input");
}

test(
  "counterfactual panel: a clicked token and a forced expert give onnxruntime-node's Δ log p; a repeated expert gets a message",
  { skip, timeout: testTimeout },
  async () => {
    const ids = defaultIds();
    const [layer, token, slot] = [1, 12, 0];
    const session = await ort.InferenceSession.create(modelPath, { logSeverityLevel: 3 });
    const forward = sessionForward(ort, session, overrideShapeOf(olmoeMini));
    const plain = await forward([ids]);
    const ranked = rankedExperts(plain, layer, token);
    const expertIn = ranked[k + 3]; // the router's 12th choice, outside its route
    const expected = await forceOneExpert(forward, ids, plain, k, layer, token, slot, expertIn);

    const { page, problems } = await openPlayground();
    await page.click(`[data-testid=tokens] [data-token='${token}']`);
    await setForm(page, {
      layer: String(layer),
      slot: "its choice no. 1 (top-1)",
      rule: "the expert numbered below",
      expert: expertIn,
    });
    await page.getByRole("button", { name: "Run the counterfactual" }).click();
    const shown = await eventually(async () => {
      assert.equal(await page.getByTestId("cf-expert-in").textContent(), String(expertIn));
      return Number(await page.getByTestId("cf-delta").getAttribute("data-value"));
    });
    assert.ok(
      Math.abs(shown - expected.deltaLogProb) < 1e-3,
      `page Δ log p ${shown}, onnxruntime-node ${expected.deltaLogProb}`,
    );
    assert.ok(Math.abs(expected.deltaLogProb) > 1e-3, "the forced expert changes the prediction");

    // an expert the token already uses: a sentence, and the page keeps working
    await setForm(page, {
      layer: String(layer),
      slot: "its choice no. 1 (top-1)",
      rule: "the expert numbered below",
      expert: ranked[2],
    });
    await eventually(async () =>
      assert.match(
        (await page.getByTestId("cf-message").textContent()) ?? "",
        /already one of this token's 8 experts \(its choice no\. 3\)/,
      ),
    );
    await setForm(page, {
      layer: String(layer),
      slot: "its choice no. 1 (top-1)",
      rule: "the expert numbered below",
      expert: 99,
    });
    await eventually(async () =>
      assert.match((await page.getByTestId("cf-message").textContent()) ?? "", /out of range/),
    );
    assert.ok((await page.locator("[data-testid=tokens] .token").count()) > 100, "the token view is still there");
    assert.deepEqual(problems, []);
    await page.close();
    await session.release();
  },
);

test(
  "routing consistency: the same run twice flips nothing; bf16 inputs flip some routes and replay removes every flip",
  { skip, timeout: testTimeout },
  async () => {
    const { page, problems } = await openPlayground();
    const route = async (label: string, shown: RegExp) => {
      await page.getByLabel(label).check();
      await page.getByRole("button", { name: "Route twice" }).click();
      await eventually(async () => assert.match((await page.getByTestId("consistency").textContent()) ?? "", shown));
      const read = async (id: string) => Number(await page.getByTestId(id).getAttribute("data-value"));
      return { free: await read("consistency-free-any"), replay: await read("consistency-replay-any") };
    };
    const same = await route("nothing (a control: the same run twice)", /second run: nothing/);
    assert.deepEqual(same, { free: 0, replay: 0 });
    const bf16 = await route("router inputs rounded to bfloat16", /second run: router inputs rounded to bfloat16/);
    assert.equal(bf16.replay, 0, "replay: zero routing mismatch");
    // the ε sweep draws its two figures
    await page.getByRole("button", { name: "Sweep ε" }).click();
    await page.getByTestId("epsilon-sweep").locator("svg").nth(1).waitFor();
    // WebGPU is not offered to this headless Chromium: the comparison says so
    await page.getByLabel("WebGPU against WASM").check();
    await page.getByRole("button", { name: "Route twice" }).click();
    await eventually(async () =>
      assert.match(
        (await page.getByTestId("consistency").textContent()) ?? "",
        /WebGPU is not available in this browser/,
      ),
    );
    assert.deepEqual(problems, []);
    await page.close();
  },
);

test(
  "calibration: the build-time table paints at once, and the live sweep in the worker reproduces it",
  { skip, timeout: testTimeout },
  async () => {
    const page = await built.browser.newPage();
    const problems = watchProblems(page);
    await page.goto(`${built.site.url}playground?ep=wasm`);
    const rows = page.locator("[data-testid=calibration-table] tbody tr");
    await eventually(async () => assert.equal(await rows.count(), olmoeMini.checkpoints.length));
    for (const cell of await page.getByTestId("calibration-source").allTextContents()) assert.equal(cell, "build");
    const worth = Number(await rows.first().locator("td").nth(1).getAttribute("data-value"));
    assert.ok(worth < 0, `replacing the first choice costs log p (${worth})`);
    assert.match(
      (await page.getByTestId("calibration-sentence").textContent()) ?? "",
      /Replacing the first choice costs most in/,
    );
    // the same sweep, live, for the page's checkpoint (the first): same texts, same code, WASM against onnxruntime-node
    const liveRow = page.locator(`[data-testid=calibration-table] tbody tr[data-checkpoint='${checkpoint}']`);
    const build = Number(await liveRow.locator("td").nth(1).getAttribute("data-value"));
    await page.waitForSelector("[data-testid=routed-summary]");
    await page.getByRole("button", { name: /Recompute live for/ }).click();
    await eventually(async () => assert.equal(await liveRow.getByTestId("calibration-source").textContent(), "live"));
    const live = Number(await liveRow.locator("td").nth(1).getAttribute("data-value"));
    assert.ok(Math.abs(live - build) < 1e-3, `live ${live} vs build ${build}`);
    assert.deepEqual(problems, []);
    await page.close();
  },
);

test(
  "a counterfactual asked for before the model has loaded gets a sentence, and the page keeps working",
  { skip, timeout: testTimeout },
  async () => {
    // A fresh profile (nothing in Cache Storage) whose model downloads never finish.
    const fresh = await launch();
    await fresh.route("**/*.onnx", () => {}); // never answered
    const page = await fresh.newPage();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(`${built.site.url}playground?ep=wasm`);
    await page.getByRole("button", { name: "Run the counterfactual" }).click();
    await eventually(async () =>
      assert.match((await page.getByTestId("cf-message").textContent()) ?? "", /has not routed a text yet/),
    );
    await page.getByRole("button", { name: "Route twice" }).click();
    await eventually(async () =>
      assert.match((await page.getByTestId("consistency").textContent()) ?? "", /has not routed a text yet/),
    );
    assert.ok(await page.locator("select").first().isEnabled(), "controls still usable");
    assert.deepEqual(errors, []);
    await fresh.close();
  },
);
