// "Your framework" in headless Chromium, under the Pages sub-path: on
// synthetic logits, on OLMoE-mini's and on a dropped file, every number on the
// page equals what `moe-lab losses FILE --framework NAME` prints for the same
// file and settings; bad settings get a message beside the inputs; no console
// errors.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { testTimeout } from "../../tools/chromium.js";
import { eventually } from "./eventually.js";
import { cliRecord, root, scratchDir, useBuiltSite } from "./fixture.js";
import { frameworks, type FrameworkName } from "../../src/lib/frameworks/catalog.js";

const built = useBuiltSite();
const dir = scratchDir("moe-lab-framework-");
const cli = (path: string, ...args: string[]) => cliRecord(path, ...args).framework;

async function open(): Promise<{ page: Page; problems: string[] }> {
  const { page, problems } = await built.open("your-framework");
  await eventually(async () => assert.ok(await page.getByTestId("aux-loss").count()));
  return { page, problems };
}

/** The exact value behind a displayed number. */
const valueOf = async (page: Page, testid: string) => {
  const text = await page.getByTestId(testid).getAttribute("data-value");
  return text === "" || text === null ? null : Number(text);
};

/** Observable Inputs' select options carry indexes as values: choose by the displayed label. */
async function chooseFramework(page: Page, name: FrameworkName): Promise<void> {
  await page.getByLabel("framework", { exact: true }).selectOption({ label: frameworks[name].label });
}

async function fill(page: Page, label: string, value: string): Promise<void> {
  const input = page.getByLabel(label, { exact: false }).first();
  await input.fill(value);
  await input.dispatchEvent("input");
}

/**
 * Equal to the last bit or two: the page runs in Chromium's V8 and the CLI in
 * Node's, whose Math.exp and Math.log may round a last bit differently.
 */
function same(actual: number | null, expected: number | null, what: string): void {
  if (actual === null || expected === null) return assert.equal(actual, expected, what);
  assert.ok(
    Math.abs(actual - expected) <= 1e-14 * Math.max(Math.abs(expected), 1e-300),
    `${what}: page ${actual}, CLI ${expected}`,
  );
}

async function expectCliNumbers(page: Page, path: string, args: string[]): Promise<void> {
  const expected = cli(path, ...args);
  await eventually(async () => {
    same(await valueOf(page, "aux-loss"), expected.aux_loss, "aux_loss");
    if (expected.z_loss !== 0 || (await page.getByTestId("z-loss").count()))
      same(await valueOf(page, "z-loss"), expected.z_loss, "z_loss");
    same(await valueOf(page, "per-layer-alpha"), expected.per_layer_alpha, "per_layer_alpha");
    same(await valueOf(page, "per-layer-beta"), expected.per_layer_beta, "per_layer_beta");
  });
}

test(
  "synthetic logits: the terms, the per-layer strength measured equal to the formula, and OLMoE-1B-7B's equivalents",
  { timeout: testTimeout },
  async () => {
    const { page, problems } = await open();
    // OLMoE fork, its defaults: measured per-layer α is w/L on every layer.
    for (let l = 0; l < 4; l++) assert.ok(Math.abs((await valueOf(page, `measured-alpha-${l}`))! - 0.01 / 4) < 1e-12);
    assert.equal(await valueOf(page, "olmoe-in-megatron-alpha"), 0.000625);
    assert.equal(await valueOf(page, "olmoe-hf-finetune-ratio"), 8);
    assert.equal(await valueOf(page, "equivalent-alpha-megatron"), 0.0025);
    assert.equal(await valueOf(page, "equivalent-beta-hf"), null, "HF has no z-loss");
    assert.deepEqual(problems, []);
    await page.close();
  },
);

test(
  "OLMoE-mini: the page's numbers equal the CLI's for the same file, layout and coefficients",
  { timeout: testTimeout },
  async () => {
    const { page, problems } = await open();
    await page.getByLabel("OLMoE-mini").check();
    await eventually(async () =>
      assert.match((await page.locator("p.note").first().textContent()) ?? "", /OLMoE-mini "global"/),
    );
    const data = JSON.parse(
      readFileSync(
        join(
          `${root}dist/_file/data/`,
          readdirSync(`${root}dist/_file/data/`).find((f) => f.startsWith("olmoe-mini-logits."))!,
        ),
        "utf8",
      ),
    );
    const path = join(dir, "olmoe-mini-global.json");
    writeFileSync(path, JSON.stringify(data.global));
    await expectCliNumbers(page, path, ["--framework", "olmoe"]);
    await chooseFramework(page, "megatron");
    await fill(page, "α (moe_aux_loss_coeff)", "0.02");
    await fill(page, "data-parallel ranks", "2");
    await fill(page, "gradient-accumulation steps", "2");
    await expectCliNumbers(page, path, [
      "--framework",
      "megatron",
      "--alpha",
      "0.02",
      "--beta",
      "0.001",
      "--dp",
      "2",
      "--ga",
      "2",
    ]);
    assert.match(
      (await page.getByTestId("cli-command").textContent()) ?? "",
      /--framework megatron --alpha 0\.02 --beta 0\.001 --dp 2 --ga 2/,
    );
    // Pads counted and Megatron's per-token loss.
    await fill(page, "pad every sequence to", "80");
    await page.getByLabel("Megatron-LM only: --calculate-per-token-loss").check();
    await expectCliNumbers(page, path, [
      "--framework",
      "megatron",
      "--alpha",
      "0.02",
      "--beta",
      "0.001",
      "--dp",
      "2",
      "--ga",
      "2",
      "--pad-to",
      "80",
      "--per-token-loss",
    ]);
    await page.getByLabel("Megatron-LM only: --calculate-per-token-loss").uncheck();
    await fill(page, "pad every sequence to", "0");
    // Hugging Face with GA 2: the layout ratio says × 2, and the CLI agrees on the term.
    await chooseFramework(page, "hf");
    await expectCliNumbers(page, path, ["--framework", "hf", "--dp", "2", "--ga", "2"]);
    await eventually(async () => assert.ok(Math.abs((await valueOf(page, "layout-ratio"))! - 2) < 1e-9));
    assert.deepEqual(problems, []);
    await page.close();
  },
);

test(
  "a dropped file gives the CLI's numbers; bad settings and files get a message beside the inputs",
  { timeout: testTimeout },
  async () => {
    const { page, problems } = await open();
    await page.getByLabel("your file").check();
    const layers = 2,
      tokens = 12,
      experts = 6;
    const routerLogits = Array.from({ length: layers }, (_, l) =>
      Array.from({ length: tokens }, (_, t) =>
        Array.from({ length: experts }, (_, e) => Math.sin(1 + l * 7 + t * 3 + e * 1.7) * 2),
      ),
    );
    const path = join(dir, "dropped.json");
    writeFileSync(path, JSON.stringify({ router_logits: routerLogits, top_k: 2, sequence_lengths: [3, 3, 3, 3] }));
    await page.locator("input[type=file]").setInputFiles(path);
    await chooseFramework(page, "olmo-core");
    await expectCliNumbers(page, path, ["--framework", "olmo-core"]);
    await fill(page, "data-parallel ranks", "3");
    await eventually(async () =>
      assert.match(
        (await page.getByTestId("framework-error").textContent()) ?? "",
        /DP × GA must divide the number of sequences/,
      ),
    );
    await fill(page, "data-parallel ranks", "2");
    await fill(page, "α (lb_loss_weight)", "-1");
    await eventually(async () =>
      assert.match((await page.getByTestId("framework-error").textContent()) ?? "", /α must be a number ≥ 0/),
    );
    await fill(page, "α (lb_loss_weight)", "0.5");
    await expectCliNumbers(page, path, ["--framework", "olmo-core", "--alpha", "0.5", "--dp", "2"]);
    const broken = join(dir, "broken.json");
    writeFileSync(broken, '{"router_logits": [[[1, "x"]]], "top_k": 1}');
    await page.locator("input[type=file]").setInputFiles(broken);
    await eventually(async () =>
      assert.match((await page.getByTestId("framework-error").textContent()) ?? "", /broken\.json/),
    );
    assert.deepEqual(problems, []);
    await page.close();
  },
);
