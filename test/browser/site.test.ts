// The built site in headless Chromium, served under a sub-path as GitHub
// Pages serves it: every page renders its formulas and figures with no
// console error and no failed request, and moving a slider updates a number
// to exactly what the library computes here in Node.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import type { Page } from "playwright-core";
import { testTimeout } from "../../tools/chromium.js";
import { eventually } from "./eventually.js";
import { root, useBuiltSite } from "./fixture.js";
import { syntheticBatch, domainMix } from "../../src/lib/synthetic.js";
import { summarize } from "../../src/lib/summary.js";
import { lossRecord } from "../../src/lib/losses/index.js";
import { defaultLayerConfig, trainRun, type Strategy } from "../../src/lib/moe-layer.js";
import { pairedInterval } from "../../src/lib/statistics.js";
import { join } from "node:path";
import { lossGradient } from "../../src/lib/losses/gradients.js";
import { centeredNorm } from "../../src/lib/losses/routing-force.js";
import { readLogits } from "../../src/lib/io/read.js";

const dist = `${root}dist/`;
const pages = [
  "",
  "routing",
  "load-balancing",
  "cv2",
  "z-loss",
  "granularity",
  "loss-free",
  "routers",
  "live-training",
  "playground",
  "ablation",
  "your-logits",
  "your-framework",
];
// Pages whose figures need something first: the model's output, or a file from the reader.
const waitFor: Record<string, string> = {
  ablation: "[data-testid=side-by-side]",
  playground: "[data-testid=tokens], [data-testid=model-error]",
  granularity: "[data-testid=real-micro], .warning",
  "z-loss": "[data-testid=real-z], .warning",
};
const figureless = new Set(["your-logits", "your-framework"]);

const built = useBuiltSite();

async function open(path: string): Promise<{ page: Page; problems: string[] }> {
  const { page, problems } = await built.open(path);
  await page.waitForSelector("#observablehq-main");
  return { page, problems };
}

/** Moves an Inputs.range slider, found by its label, to `value`. */
async function setRange(page: Page, label: string, value: number): Promise<void> {
  const form = page.locator("form", { has: page.locator("label", { hasText: label }) });
  await form.locator("input[type=range]").fill(String(value));
}

const number = async (page: Page, testId: string) => Number(await page.getByTestId(testId).first().textContent());
/** Waits until the number shown under `testId` is `expected` (cells re-run after an input, not at once). */
const shows = (page: Page, testId: string, expected: number, what = testId) =>
  eventually(async () => assert.equal(await number(page, testId), expected, what));

for (const path of pages) {
  test(`page /${path} renders formulas and figures with no error`, { timeout: testTimeout }, async () => {
    const { page, problems } = await open(path);
    if (waitFor[path]) await page.waitForSelector(waitFor[path]);
    // cells run one after another (later on a loaded machine): wait until every
    // figure has drawn its marks and the formulas are typeset
    await eventually(async () => {
      assert.ok((await page.locator(".katex").count()) > 0, "no formula rendered");
      const figures = await page.$$eval("svg[class^='plot']", (svgs) =>
        svgs
          .filter((svg) => !svg.closest("[class$='-ramp']") && svg.getAttribute("height") !== "50")
          .map((svg) => {
            const marks = [...svg.querySelectorAll(":scope > g[aria-label]")].filter(
              (g) => !/axis|tick|grid|rule|label|text/.test(g.getAttribute("aria-label") ?? ""),
            );
            return marks.reduce((count, g) => count + g.children.length, 0);
          }),
      );
      if (!figureless.has(path)) assert.ok(figures.length > 0, "no figure on the page");
      figures.forEach((marks, i) => assert.ok(marks > 0, `figure ${i} is empty`));
    });
    const errorCells = await page.$$eval(".observablehq--error", (els) => els.map((e) => e.textContent));
    assert.deepEqual(errorCells, [], "cells in error");
    assert.equal(await page.locator(".katex-error").count(), 0, "unrendered formula");
    assert.deepEqual(problems, []);
    assert.deepEqual(built.site.outside, [], "requests outside the base path");
    await page.close();
  });
}

test(
  "granularity: the micro-batch slider shows exactly the library's lbl.micro_batch",
  { timeout: testTimeout },
  async () => {
    const { page, problems } = await open("granularity");
    const batch = syntheticBatch({
      layers: 2,
      experts: 16,
      domains: domainMix(16, 0.5, "grouped"),
      tokensPerSequence: 64,
      specialization: 1.5,
      seed: 11,
    });
    const summary = summarize(batch.logits, 2, batch.sequenceLengths);
    const before = Number(lossRecord(summary, 2).lbl.micro_batch.toFixed(4));
    await shows(page, "g-micro", before);
    for (const m of [4, 8, 16]) {
      await setRange(page, "micro-batch size m", m);
      const record = lossRecord(summary, m);
      await shows(page, "g-micro", Number(record.lbl.micro_batch.toFixed(4)), `m = ${m}`);
      await shows(page, "g-global", Number(record.lbl.global.toFixed(4)), `m = ${m}`);
      await shows(page, "g-maxvio-micro", Number(record.max_vio.micro_batch.toFixed(3)), `m = ${m}`);
    }
    // with one micro-batch of all 16 sequences, micro_batch = global = switch
    assert.equal(await number(page, "g-micro"), await number(page, "g-switch"));
    assert.notEqual(before, await number(page, "g-micro"));
    assert.deepEqual(problems, []);
    await page.close();
  },
);

test("z-loss: top-k divides the OLMoE normalisation and nothing else", { timeout: testTimeout }, async () => {
  const { page, problems } = await open("z-loss");
  const base = syntheticBatch({ layers: 4, experts: 64, domains: ["code", "prose"], tokensPerSequence: 128, seed: 5 });
  const stMoe = lossRecord(summarize(base.logits, 8), 1).z_loss.st_moe;
  await shows(page, "z-st-moe", Number(stMoe.toFixed(4)));
  await setRange(page, "top-k", 4);
  await shows(page, "z-olmoe", Number((stMoe / 4).toFixed(4)));
  assert.equal(await number(page, "z-st-moe"), Number(stMoe.toFixed(4)));
  assert.deepEqual(problems, []);
  await page.close();
});

test(
  "granularity: lbl.global equals lbl.switch with equal micro-batches; the running buffer with one step is the full-count loss",
  { timeout: testTimeout },
  async () => {
    const { page, problems } = await open("granularity");
    await eventually(async () => assert.equal(await number(page, "g-global"), await number(page, "g-switch")));
    await page
      .locator("form", { has: page.locator("label", { hasText: "gradient-accumulation steps" }) })
      .locator("select")
      .selectOption({ label: "1" });
    await eventually(async () => assert.equal(await number(page, "ga-running"), await number(page, "g-global")));
    assert.equal(await page.getByTestId("ga-gradient-gap").textContent(), "0.0 %");
    await page
      .locator("form", { has: page.locator("label", { hasText: "gradient-accumulation steps" }) })
      .locator("select")
      .selectOption({ label: "4" });
    await eventually(async () => assert.ok((await number(page, "ga-running")) > (await number(page, "g-global"))));
    assert.deepEqual(problems, []);
    await page.close();
  },
);

test(
  "z-loss: its routing force beside the LBL's on OLMoE-mini, with and without ÷k",
  { timeout: testTimeout },
  async () => {
    const { page, problems } = await open("z-loss");
    const data = JSON.parse(
      readFileSync(
        join(
          dist,
          "_file/data/",
          readdirSync(join(dist, "_file/data/")).find((f) => f.startsWith("olmoe-mini-logits."))!,
        ),
        "utf8",
      ),
    );
    const ratios = Object.values(data).map((entry: any) => {
      const { logits } = readLogits(new TextEncoder().encode(JSON.stringify(entry)), "checkpoint.json");
      const options = { topK: entry.top_k, sequenceLengths: entry.sequence_lengths };
      const lbl = 0.01 * centeredNorm(lossGradient(logits, "lbl.switch", options), logits);
      return [
        (0.001 * centeredNorm(lossGradient(logits, "z_loss.st_moe", options), logits)) / lbl,
        (0.001 * centeredNorm(lossGradient(logits, "z_loss.olmoe", options), logits)) / lbl,
      ];
    });
    const range = (i: number) =>
      `${Math.min(...ratios.map((r) => r[i])).toFixed(2)}–${Math.max(...ratios.map((r) => r[i])).toFixed(2)}×`;
    await eventually(async () => assert.equal(await page.getByTestId("z-force-ratio").textContent(), range(0)));
    assert.equal(await page.getByTestId("zk-force-ratio").textContent(), range(1));
    assert.deepEqual(problems, []);
    await page.close();
  },
);

test("z-loss: large logits break the naive float32 formula, not the stable one", { timeout: testTimeout }, async () => {
  const { page } = await open("z-loss");
  await eventually(async () => assert.ok(Number.isFinite(await number(page, "z-naive"))));
  await setRange(page, "logit scale", 40);
  await eventually(async () => assert.equal(await page.getByTestId("z-naive").textContent(), "Infinity"));
  assert.ok(Number.isFinite(await number(page, "z-st-moe")));
  await page.close();
});

test(
  "load-balancing: the equal-logits trap reads lbl.switch = 1 with MaxVio = E/k − 1",
  { timeout: testTimeout },
  async () => {
    const { page } = await open("load-balancing");
    await page
      .locator("form", { has: page.locator("label", { hasText: "all logits equal" }) })
      .locator("input[type=checkbox]")
      .check();
    await shows(page, "trap-maxvio", 16 / 2 - 1);
    await shows(page, "lbl-switch", 1);
    // A blind value, not a blind gradient: (1/T)(f_j − 1/E) per layer, 4 layers, T = 128, E = 16, k = 2.
    await shows(page, "flat-gradient-crowded", Number((((1 / 128) * (0.5 - 1 / 16)) / 4).toExponential(3)));
    await shows(page, "flat-gradient-idle", Number((((1 / 128) * (-1 / 16)) / 4).toExponential(3)));
    // The other two blind spots, live: below 1 with an idle expert; HF's pooling at exactly k with no gradient.
    await shows(page, "below-one-lbl", 0.8381);
    await shows(page, "pooled-hf", 1);
    assert.ok(Math.abs(await number(page, "pooled-gradient")) <= 1e-12);
    await page.close();
  },
);

test("why balance: without α the router collapses, with α = 0.01 it does not", { timeout: testTimeout }, async () => {
  const { page } = await open("");
  await eventually(async () => assert.ok((await number(page, "dead-experts")) > 8));
  await page
    .locator("form", { has: page.locator("label", { hasText: "LBL α" }) })
    .locator("select")
    .selectOption("0.03");
  await shows(page, "dead-experts", 0);
  await page.close();
});

test(
  "live training: a fixed seed reproduces the library's run, and no balancing ends least balanced",
  { timeout: testTimeout },
  async () => {
    const { page, problems } = await open("live-training");
    const labels: Record<Strategy, string> = {
      none: "no balancing",
      "lbl-micro": "LBL per micro-batch",
      "lbl-global": "LBL, global batch",
      "loss-free": "loss-free bias",
    };
    const final: Partial<Record<Strategy, number>> = {};
    for (const strategy of ["lbl-global", "none", "lbl-micro", "loss-free"] as Strategy[]) {
      await page.getByLabel(labels[strategy], { exact: true }).check();
      // the strategy label changes with the run's first values, so this cannot read the previous run
      // (no helper functions inside: tsx would inject a __name helper the page lacks)
      await page.waitForFunction(
        (s) =>
          document.querySelector("[data-testid=live-strategy]")?.textContent === s &&
          document.querySelector("[data-testid=live-status]")?.textContent === "done" &&
          document.querySelector("[data-testid=live-step]")?.textContent === "400",
        strategy,
      );
      const expected = trainRun({ ...defaultLayerConfig, strategy }, 400).slice(-40);
      const mean = (key: "maxVio" | "maxVioMicro" | "taskLoss") =>
        expected.reduce((s, m) => s + m[key], 0) / expected.length;
      final[strategy] = await number(page, "live-maxvio");
      assert.equal(
        final[strategy],
        Number(mean("maxVio").toFixed(3)),
        `${strategy}: MaxVio as the library computes it`,
      );
      assert.equal(await number(page, "live-maxvio-micro"), Number(mean("maxVioMicro").toFixed(3)));
      assert.equal(await number(page, "live-task"), Number(mean("taskLoss").toFixed(3)));
    }
    for (const strategy of ["lbl-global", "lbl-micro", "loss-free"] as Strategy[])
      assert.ok(final.none! > final[strategy]!, `none ${final.none} vs ${strategy} ${final[strategy]}`);
    assert.deepEqual(problems, []);
    await page.close();
  },
);

test("ablation: toggling checkpoints and metrics redraws the training curves", { timeout: testTimeout }, async () => {
  const { page, problems } = await open("ablation");
  const title = () => page.locator("h2, h3, figure h2").filter({ hasText: "over training" }).first().textContent();
  await eventually(async () => assert.match((await title()) ?? "", /^ce over training/));
  await page
    .locator("form", { has: page.locator("label", { hasText: "metric" }) })
    .locator("select")
    .selectOption({ label: "MaxVio, global batch" });
  await eventually(async () => assert.match((await title()) ?? "", /^max_vio_global over training/));
  const boxes = page
    .locator("form", { has: page.locator("label", { hasText: "checkpoints" }) })
    .locator("input[type=checkbox]");
  const count = await boxes.count();
  assert.ok(count >= 1, "at least one trained checkpoint");
  const lines = () => page.locator("svg [aria-label=line] path").count();
  const before = await lines();
  await boxes.first().uncheck();
  await eventually(async () => assert.ok((await lines()) < before, "a curve disappears"));
  await boxes.first().check();
  await eventually(async () => assert.equal(await lines(), before, "the curve comes back"));
  // the held-out figure has one bar per checkpoint and measure (two domains for perplexity)
  assert.equal(await page.getByTestId("heldout-figure").locator("[aria-label=bar] rect").count(), count * 4);
  // every trained checkpoint routes the sample text side by side, none fails
  // (the build's cards show first; the live ones replace them once the section is in view)
  await page.getByTestId("side-anchor").scrollIntoViewIfNeeded();
  await page.locator("[data-testid=side-by-side][data-source=live]").waitFor();
  const cards = page.getByTestId("side-by-side").locator(".card");
  await eventually(async () =>
    assert.equal(
      await cards.filter({ has: page.locator(".token, .warning") }).count(),
      count,
      "every checkpoint's card routed",
    ),
  );
  assert.equal(await cards.count(), count);
  assert.equal(await cards.locator(".warning").count(), 0);
  assert.equal((await cards.locator(".token").count()) > 0, true);
  assert.deepEqual(problems, []);
  await page.close();
});

test(
  "ablation: the live run starts while the reader looks at the lower part of the side-by-side, its top above the screen",
  { timeout: testTimeout },
  async () => {
    const { page, problems } = await built.open("ablation");
    const [anchor, end] = [page.getByTestId("side-anchor"), page.getByTestId("side-end")];
    await anchor.waitFor({ state: "attached" });
    await end.waitFor({ state: "attached" });
    await page.locator("[data-testid=side-by-side][data-source=build]").waitFor();
    // The section's end 300 px above the screen's bottom: its top, and the anchor that opens it, far above the screen.
    const top = await page.evaluate(() => {
      const close = document.querySelector("[data-testid=side-end]")!.getBoundingClientRect().bottom;
      scrollBy(0, close - (innerHeight - 300));
      return document.querySelector("[data-testid=side-anchor]")!.getBoundingClientRect().top;
    });
    assert.ok(
      top < -300,
      `the anchor is ${top} px from the screen's top: this checks a section whose top is off screen`,
    );
    await page.locator("[data-testid=side-by-side][data-source=live]").waitFor();
    assert.deepEqual(problems, []);
    await page.close();
  },
);

test(
  "a missing address gets the lab's 404 page, whose links lead back into the lab",
  { timeout: testTimeout },
  async () => {
    const page = await built.browser.newPage();
    const response = await page.goto(built.site.url + "no/such/page", { waitUntil: "networkidle" });
    assert.equal(response?.status(), 404);
    await page.getByRole("heading", { name: "Page not found" }).waitFor();
    await page.locator("#observablehq-main").getByRole("link", { name: "Router z-loss" }).click();
    await page.waitForURL(built.site.url + "z-loss");
    await page.getByRole("heading", { name: "Router z-loss" }).first().waitFor();
    await page.close();
  },
);

test(
  "ablation and z-loss: every comparison of trained arms states its interval, and its verdict follows from it",
  { timeout: testTimeout },
  async () => {
    // the runs as built into dist/ (the campaign may publish new arms into data/ while tests run)
    const loaderOutput = readdirSync(`${dist}_file/data`).find((f) => /^ablation\.[0-9a-f]+\.json$/.test(f));
    assert.ok(loaderOutput, "the ablation data loader's output is in dist/");
    const runs: { arm: string; seed: number; metrics: { bits: number } }[] = JSON.parse(
      readFileSync(`${dist}_file/data/${loaderOutput}`, "utf8"),
    ).runs;
    const bits = (arm: string) => new Map(runs.filter((r) => r.arm === arm).map((r) => [r.seed, r.metrics.bits]));
    const expected = pairedInterval(bits("global"), bits("micro"));
    for (const [path, list] of [
      ["ablation", "comparisons"],
      ["z-loss", "z-comparisons"],
    ]) {
      const { page, problems } = await open(path);
      const items = page.getByTestId(list).locator("[data-testid=comparison]");
      if (path === "z-loss" && !runs.some((r) => r.arm === "global-z-no-divk" || r.arm === "global-no-z")) {
        await page.getByTestId("z-arms-missing").waitFor();
        assert.equal(await page.getByTestId("z-comparisons").count(), 0, "no z-loss claim without its arms");
        await page.close();
        continue;
      }
      await eventually(async () => assert.ok((await items.count()) > 0, "comparisons shown"));
      for (const item of await items.all()) {
        const interval = (await item.getByTestId("interval").textContent()) ?? "";
        const verdict = (await item.getByTestId("verdict").textContent()) ?? "";
        assert.match(
          interval,
          /95 % interval .+ over \d+ paired seeds|no interval from one seed|no seed trained for both arms yet/,
          `every comparison states its interval: ${interval}`,
        );
        if (!/95 % interval/.test(interval))
          assert.match(
            verdict,
            /not resolved at this scale|no difference resolved/,
            `no verdict without an interval: ${interval} → ${verdict}`,
          );
      }
      if (path === "ablation") {
        // the first claim (Qiu et al.: global vs micro specialisation) shows what the statistics module computes here
        const first = (await items.first().getByTestId("interval").textContent()) ?? "";
        assert.ok(
          first.startsWith(`${expected.mean >= 0 ? "+" : "−"}${Math.abs(expected.mean).toFixed(3)} bits`),
          `${first} vs mean ${expected.mean}`,
        );
        if (expected.low !== null) assert.ok(first.includes(`over ${expected.n} paired seeds`));
        await page.getByTestId("seed-figure").locator("svg").first().waitFor();
        // specialisation against sequences per f group: drawn once its arms exist, its ends judged with their interval
        const groupArms = runs.filter((r) => /^lbl-group\d+$/.test(r.arm)).length;
        if (groupArms >= 3) await page.getByTestId("group-figure").locator("svg").first().waitFor();
        else await page.getByTestId("group-missing").waitFor();
        const ends = (await page.getByTestId("group-sentence").getByTestId("interval").textContent()) ?? "";
        assert.equal(ends, first, "the curve's ends are the global-vs-micro specialisation claim, with its interval");
      }
      assert.deepEqual(problems, []);
      await page.close();
    }
  },
);

test("cv2: E·Σf² equals 1 + CV²(load) on the page's logits", { timeout: testTimeout }, async () => {
  const { page, problems } = await open("cv2");
  await eventually(async () => {
    const left = await number(page, "cv2-bridge-left");
    assert.ok(Number.isFinite(left) && left >= 1, `E·Σf² = ${left}`);
    assert.equal(left, await number(page, "cv2-bridge-right"));
    assert.equal(Number((left - 1).toFixed(5)), await number(page, "cv2-load"), "and its CV² is the table's");
  });
  assert.deepEqual(problems, []);
  await page.close();
});

test(
  "production routers: the capacity, aux-map and causality numbers are the library's",
  { timeout: testTimeout },
  async () => {
    const { routeLayer, loadOf, differingTokens } = await import("../../src/lib/routed-layer.js");
    const { routingPresets } = await import("../../src/lib/presets.js");
    const { applyCapacity } = await import("../../src/lib/capacity.js");
    // the page's defaults: 64 experts, top-8, 8 sequences × 128 tokens, popularity 0.8, seed 4
    const batch = syntheticBatch({
      experts: 64,
      domains: Array.from({ length: 8 }, (_, s) => (s % 2 ? "prose" : "code")),
      tokensPerSequence: 128,
      popularity: 0.8,
      seed: 4,
    });
    const tokens = batch.logits.tokens;
    const olmoe = routeLayer(batch.logits.data, tokens, 64, routingPresets.olmoe.convention(8));
    const dropped = applyCapacity(olmoe.chosen, olmoe.gates, 64, 8, 1, "probs").droppedShare;
    const deepseek = routeLayer(batch.logits.data, tokens, 64, routingPresets["deepseek-v3"].convention(8));
    const load = loadOf(deepseek.chosen, 64);
    const bias = Float64Array.from(load, (c) => 0.05 * Math.sign((tokens * 8) / 64 - c));
    const biased = routeLayer(batch.logits.data, tokens, 64, routingPresets["deepseek-v3"].convention(8), bias);

    const { page, problems } = await open("routers");
    await page.waitForSelector("[data-testid=causality]");
    assert.equal((await page.getByTestId("cap-dropped").textContent())?.trim(), `${(100 * dropped).toFixed(2)} %`);
    assert.equal(
      (await page.getByTestId("aux-mismatch").textContent())?.trim(),
      `${(100 * differingTokens(biased.chosen, biased.auxChosen, 8)).toFixed(1)} %`,
    );
    assert.equal(
      (await page.getByTestId("differ-mixtral").textContent())?.trim(),
      "0.0 %",
      "softmax presets choose OLMoE's experts",
    );
    assert.equal((await page.getByTestId("causal-token-choice").first().textContent())?.trim(), "causal");
    assert.match((await page.getByTestId("causal-expert-choice").textContent()) ?? "", /flagged/);
    assert.match(
      (await page.getByTestId("causal-quantile-balancing-solved-on-the-same-batch").textContent()) ?? "",
      /flagged/,
    );
    // a slider re-runs the capacity cell: at CF 2 fewer slots are dropped
    await page
      .locator("form", { has: page.locator("label", { hasText: "capacity factor" }) })
      .locator("input[type=number]")
      .fill("2");
    await page
      .locator("form", { has: page.locator("label", { hasText: "capacity factor" }) })
      .locator("input[type=number]")
      .press("Enter");
    const atTwo = applyCapacity(olmoe.chosen, olmoe.gates, 64, 8, 2, "probs").droppedShare;
    await eventually(async () =>
      assert.equal((await page.getByTestId("cap-dropped").textContent())?.trim(), `${(100 * atTwo).toFixed(2)} %`),
    );
    assert.deepEqual(problems, []);
    await page.close();
  },
);

test(
  "loss-free: the controllers' table is the library's, and a new seed re-runs it",
  { timeout: testTimeout },
  async () => {
    const { syntheticScoreStream, runControllers, controllerReport, scoreScale } =
      await import("../../src/lib/bias-controllers.js");
    // the page's defaults: 32 experts, top-4, 80 batches of 256 tokens, switch at 40, sigmoid, u = 0.1 × scale
    const expected = (seed: number) => {
      const stream = syntheticScoreStream({
        experts: 32,
        topK: 4,
        tokensPerBatch: 256,
        batches: 80,
        switchAt: 40,
        score: "sigmoid",
        specialization: 0.5,
        seed,
      });
      const u = 10 ** -1 * scoreScale(stream);
      const [sign, ema] = runControllers(stream, [
        { rule: "sign", rate: u },
        { rule: "quantile-ema", rate: 0, ema: 0.3 },
      ]);
      return { sign: controllerReport(sign, 40, 32, 10).after, ema: controllerReport(ema, 40, 32, 10).after };
    };
    const { page, problems } = await open("loss-free");
    await page.waitForSelector("[data-testid=controllers]");
    const first = expected(1);
    await shows(page, "after-sign", Number(first.sign.toFixed(3)));
    await shows(page, "after-quantile-ema", Number(first.ema.toFixed(3)));
    assert.equal(await number(page, "after-quantile-same-batch"), 0, "same-batch quantile balancing is exact");
    await page.getByTestId("recentred-same").waitFor();
    await setRange(page, "stream seed", 2);
    const second = expected(2);
    await shows(page, "after-sign", Number(second.sign.toFixed(3)));
    await shows(page, "after-quantile-ema", Number(second.ema.toFixed(3)));
    assert.deepEqual(problems, []);
    await page.close();
  },
);

for (const [query, runtime, wasmFetches] of [
  ["", "the lab's own forward pass, fetching no wasm", 0],
  ["?ep=wasm", "onnxruntime-web, fetching its wasm once", 1],
] as const)
  test(
    `one runtime per page: z-loss${query} routes all four checkpoints in one worker, on ${runtime}`,
    { timeout: testTimeout },
    async () => {
      const requested: string[] = [];
      const workers: string[] = [];
      const { page, problems } = await built.open(`z-loss${query}`, (p) => {
        p.on("request", (r) => requested.push(r.url()));
        p.on("worker", (w) => workers.push(w.url()));
      });
      await page.waitForSelector("#observablehq-main");
      // The HTML starts the model worker at once (its script compiles while the page loads), but the live run
      // and the checkpoints' downloads wait until the section comes into view: no bandwidth for a section unread.
      await page.getByTestId("z-anchor").waitFor({ state: "attached" });
      await page.waitForTimeout(1500);
      assert.deepEqual(
        requested.filter((url) => url.endsWith(".onnx")),
        [],
        "no checkpoint downloaded before the section is in view",
      );
      assert.ok(workers.filter((url) => /model-worker/.test(url)).length <= 1, `workers: ${workers.join(", ")}`);
      await page.getByTestId("z-anchor").scrollIntoViewIfNeeded();
      await page.locator("[data-testid=real-z][data-source=live]").waitFor();
      const rows = page.getByTestId("real-z").locator("tbody tr");
      const checkpoints = readdirSync(join(root, "data/models")).filter(
        (f) => f.endsWith(".onnx") && !f.endsWith(".router.onnx"),
      ).length;
      assert.equal(await rows.count(), checkpoints, "a row per checkpoint");
      const backends = await rows.locator("td:last-child").allTextContents();
      assert.deepEqual(
        backends.map((b) => b.replace(/ \(.*\)/, "")),
        new Array(checkpoints).fill(query ? "WASM, live" : "JavaScript, live"),
      );
      const wasm = requested.filter((url) => url.endsWith(".wasm"));
      assert.equal(wasm.length, wasmFetches, `onnxruntime's wasm fetched ${wasmFetches} times: ${wasm.join(", ")}`);
      assert.equal(workers.filter((url) => /model-worker/.test(url)).length, 1, `workers: ${workers.join(", ")}`);
      // at most once each: an earlier test in this browser may have left them in Cache Storage
      assert.ok(
        requested.filter((url) => url.endsWith(".onnx")).length <= checkpoints,
        "no checkpoint downloaded twice",
      );
      assert.deepEqual(problems, []);
      await page.close();
    },
  );

test(
  "a selection runs its cells once: the input's repeated event (same value) stops before view()",
  { timeout: testTimeout },
  async () => {
    const { page, problems } = await open("ablation");
    const form = page.locator("form", { has: page.locator("label", { hasText: "sample" }) }).first();
    // a listener registered now runs after view()'s: it hears exactly what view() heard
    await form.evaluate((f) => {
      (window as unknown as { heard: unknown[] }).heard = [];
      f.addEventListener("input", () =>
        (window as unknown as { heard: unknown[] }).heard.push((f as unknown as { value: unknown }).value),
      );
    });
    await form.locator("select").selectOption({ label: "C" });
    await eventually(async () =>
      assert.deepEqual(await page.evaluate(() => (window as unknown as { heard: unknown[] }).heard), ["c"]),
    );
    await form.locator("select").selectOption({ label: "Python" });
    await eventually(async () =>
      assert.deepEqual(await page.evaluate(() => (window as unknown as { heard: unknown[] }).heard), ["c", "python"]),
    );
    assert.deepEqual(problems, []);
    await page.close();
  },
);

/** The numbers of a table's body, row by row (cells that do not parse as numbers dropped). */
async function tableNumbers(page: Page, selector: string): Promise<number[][]> {
  const rows = await page.locator(`${selector} tbody tr`).all();
  return Promise.all(
    rows.map(async (row) =>
      (await row.locator("td").allTextContents())
        .filter((text) => text.trim() !== "") // Inputs.table's selection column
        .map(Number)
        .filter((v) => Number.isFinite(v)),
    ),
  );
}

/** The numbers of the table that the build wrote into a page's HTML (a ```build-copy fence), row by row. */
function builtCopyNumbers(page: string, name: string): number[][] {
  const html = readFileSync(`${dist}${page}.html`, "utf8");
  const start = html.indexOf(`<div data-build-copy="${name}">`);
  assert.ok(start >= 0, `no build-time copy of ${name} in ${page}.html`);
  const body = /<tbody>(.*?)<\/tbody>/s.exec(html.slice(start))![1];
  return [...body.matchAll(/<tr>(.*?)<\/tr>/gs)].map((row) =>
    [...row[1].matchAll(/<td class="number"[^>]*>([^<]*)<\/td>/g)].map((cell) => Number(cell[1])),
  );
}

test(
  "first paint from the build, then live: z-loss, granularity and the ablation show build-time numbers at once, and the live run agrees",
  { timeout: testTimeout },
  async () => {
    // The built HTML itself holds the build-time table (it paints before any script runs) ...
    const copiedRows = builtCopyNumbers("z-loss", "real-z");
    assert.ok(copiedRows.length === 4 && copiedRows.every((r) => r.length === 5), JSON.stringify(copiedRows));
    const { page, problems } = await open("z-loss");
    await page.locator("[data-testid=real-z][data-source=build]").waitFor();
    // ... and the page's cell, drawing the same table from the data loader's summaries, replaces it with equal numbers.
    await page.locator("[data-build-copy]").waitFor({ state: "detached" });
    const buildRows = await tableNumbers(page, "[data-testid=real-z]");
    assert.deepEqual(buildRows, copiedRows);
    await page.getByTestId("z-anchor").scrollIntoViewIfNeeded();
    await page.locator("[data-testid=real-z][data-source=live]").waitFor();
    const liveRows = await tableNumbers(page, "[data-testid=real-z]");
    assert.equal(liveRows.length, buildRows.length);
    // WASM in the page against onnxruntime-node at build time: router logits within ~1e-5, so each shown value
    // agrees to its last digit: z-losses to 3 decimals, β·z to 3 significant digits, the largest logit to 2 decimals
    const tolerance = (v: number, column: number) =>
      [1.5e-3, 1.5e-3, 6e-3 * Math.abs(v), 6e-3 * Math.abs(v), 1.1e-2][column];
    liveRows.forEach((row, i) =>
      row.forEach((v, j) =>
        assert.ok(
          Math.abs(v - buildRows[i][j]) <= tolerance(v, j),
          `row ${i} column ${j}: live ${v}, build ${buildRows[i][j]}`,
        ),
      ),
    );
    await page.close();

    const copiedValues = builtCopyNumbers("granularity", "real-granularity").flat();
    assert.equal(copiedValues.length, 4);
    const g = await open("granularity");
    await g.page.locator("[data-testid=real-granularity][data-source=build]").waitFor();
    await g.page.locator("[data-build-copy]").waitFor({ state: "detached" });
    const value = (id: string) => g.page.getByTestId(id).textContent().then(Number);
    const buildValues = await Promise.all(["real-switch", "real-sequence", "real-micro", "real-global"].map(value));
    assert.deepEqual(buildValues, copiedValues);
    await g.page.getByTestId("real-anchor").scrollIntoViewIfNeeded();
    await g.page.locator("[data-testid=real-granularity][data-source=live]").waitFor();
    const liveValues = await Promise.all(["real-switch", "real-sequence", "real-micro", "real-global"].map(value));
    liveValues.forEach((v, i) => assert.ok(Math.abs(v - buildValues[i]) <= 2e-4, `${v} against ${buildValues[i]}`));
    await g.page.close();

    // The ablation's side-by-side: the build routed the opening sample with every checkpoint;
    // the live cards agree on MaxVio and lbl.switch to their last digit and on nearly every token's top-1 expert.
    const a = await open("ablation");
    const cardsOf = (cards: ReturnType<Page["locator"]>) =>
      cards.evaluateAll((els) =>
        els.map((card) => ({
          checkpoint: card.getAttribute("data-checkpoint"),
          maxVio: Number(card.querySelector("[data-testid=side-max-vio]")?.textContent),
          lbl: Number(card.querySelector("[data-testid=side-lbl]")?.textContent),
          experts: [...card.querySelectorAll(".token")].map((t) => Number(t.getAttribute("data-expert"))),
        })),
      );
    const copy = readFileSync(`${dist}ablation.html`, "utf8").split('<div data-build-copy="side-by-side">')[1] ?? "";
    const buildCards = copy
      .split('<div class="card" data-checkpoint="')
      .slice(1)
      .map((card) => ({
        checkpoint: card.slice(0, card.indexOf('"')),
        maxVio: Number(/data-testid="side-max-vio">([^<]*)</.exec(card)?.[1]),
        lbl: Number(/data-testid="side-lbl">([^<]*)</.exec(card)?.[1]),
        experts: [...card.matchAll(/data-expert="(\d+)"/g)].map((m) => Number(m[1])),
      }));
    assert.ok(buildCards.length >= 1 && buildCards.every((c) => c.experts.length === 120), JSON.stringify(buildCards));
    await a.page.getByTestId("side-anchor").scrollIntoViewIfNeeded();
    await a.page.locator("[data-testid=side-by-side][data-source=live]").waitFor();
    const liveCards = await cardsOf(a.page.locator("[data-testid=side-by-side][data-source=live] .card"));
    assert.deepEqual(
      liveCards.map((c) => c.checkpoint),
      buildCards.map((c) => c.checkpoint),
    );
    liveCards.forEach((live, i) => {
      const build = buildCards[i];
      assert.ok(
        Math.abs(live.maxVio - build.maxVio) <= 0.011 && Math.abs(live.lbl - build.lbl) <= 0.0011,
        live.checkpoint!,
      );
      const agree = live.experts.filter((e, t) => e === build.experts[t]).length;
      assert.ok(agree >= 0.98 * build.experts.length, `${live.checkpoint}: ${agree} of 120 top-1 experts agree`);
    });
    assert.deepEqual([...problems, ...g.problems, ...a.problems], []);
    await a.page.close();
  },
);
