/**
 * The live training page in headless Chromium: steps per second of the
 * default run once the page has loaded (target ≥ 400) and of the first run,
 * which trains while the page itself is still loading, beside its training
 * code called directly in the same page and the same run in Node.
 */
import { existsSync, readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { performance } from "node:perf_hooks";
import type { Page } from "playwright-core";
import { launch } from "../tools/chromium.js";
import { serveDist } from "../tools/static-server.js";
import { defaultLayerConfig, trainRun } from "../src/lib/moe-layer.js";
import type { BenchRow } from "./timing.js";

/**
 * Sets the seed (the page's last number input) and waits until the run it
 * starts is done. Sent as source text: tsx would wrap a passed function's inner
 * functions in a helper the page does not have.
 */
async function rerun(page: Page, seed: string): Promise<void> {
  await page.evaluate(`new Promise((resolve) => {
    const status = () => document.querySelector("[data-testid=live-status]")?.textContent;
    const inputs = [...document.querySelectorAll("form input[type=number]")];
    const seedInput = inputs[inputs.length - 1];
    seedInput.value = ${JSON.stringify(seed)};
    seedInput.dispatchEvent(new Event("input", { bubbles: true }));
    let started = false;
    const check = () => {
      if (status() !== "done") started = true;
      if (started && status() === "done") resolve();
      else requestAnimationFrame(check);
    };
    check();
  })`);
}

export async function benchLiveTraining(): Promise<BenchRow[]> {
  const started = performance.now();
  trainRun(defaultLayerConfig, 400);
  const nodeRate = 400 / ((performance.now() - started) / 1000);
  const rows: BenchRow[] = [
    {
      suite: "live training",
      case: "one MoE layer, default size, Node",
      value: nodeRate,
      unit: "st/s",
      note: "steps per second",
    },
  ];
  const dist = fileURLToPath(new URL("../dist/", import.meta.url));
  if (!existsSync(dist)) {
    rows.push({
      suite: "live training",
      case: "same in headless Chromium",
      value: NaN,
      unit: "st/s",
      note: "skipped: run `npm run build` first",
    });
    return rows;
  }
  const site = await serveDist(dist);
  const browser = await launch();
  // The same training code called directly in the page (the module the page imports), against the page's own
  // rate with its redraws: interleaved, page then direct, three times; medians.
  const moduleFile = readdirSync(`${dist}_import/lib/`).find((f) => /^moe-layer\.[\w-]+\.js$/.test(f));
  try {
    const firstRates: number[] = [];
    const pageRates: number[] = [];
    const directRates: number[] = [];
    for (let round = 0; round < 3; round++) {
      const page = await browser.newPage();
      await page.goto(site.url + "live-training");
      await page.waitForFunction(
        () => document.querySelector("[data-testid=live-status]")?.textContent === "done",
        null,
        { timeout: 120_000 },
      );
      firstRates.push(Number(await page.getByTestId("live-speed").textContent()));
      // The defaults again once the page has loaded: seed 2, then back to 1, and that run's rate.
      for (const seed of ["2", "1"]) await rerun(page, seed);
      pageRates.push(Number(await page.getByTestId("live-speed").textContent()));
      if (moduleFile)
        directRates.push(
          await page.evaluate(async (url) => {
            const lib = await import(url);
            const start = performance.now();
            lib.trainRun(lib.defaultLayerConfig, 400);
            return 400 / ((performance.now() - start) / 1000);
          }, `${site.url}_import/lib/${moduleFile}`),
        );
      await page.close();
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const rate = median(pageRates);
    const first = median(firstRates);
    rows.push(
      {
        suite: "live training",
        case: "the page in headless Chromium, page defaults, once the page has loaded",
        value: rate,
        unit: "st/s",
        note: `median of 3 (the defaults rerun: seed 2, then 1), redrawing 4×/s; target ≥ 400: ${rate >= 400 ? "met" : "MISSED"}`,
      },
      {
        suite: "live training",
        case: "same, the first run, which starts while the page itself loads",
        value: first,
        unit: "st/s",
        note: "median of 3; it shares two cores with the page's modules, KaTeX and figures",
      },
    );
    if (directRates.length) {
      const direct = median(directRates);
      rows.push(
        {
          suite: "live training",
          case: "its training code called directly in the page",
          value: direct,
          unit: "st/s",
          note: "median of 3, no drawing",
        },
        {
          suite: "live training",
          case: "page ÷ direct",
          value: rate / direct,
          unit: "×",
          note: "the share of its code's speed the page reaches",
        },
      );
    }
  } finally {
    await browser.close();
    await site.close();
  }
  return rows;
}
