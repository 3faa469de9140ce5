/**
 * The live training page in headless Chromium: steps per second of the
 * default run (target ≥ 20), beside the same run in Node.
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { performance } from "node:perf_hooks";
import { launch } from "../tools/chromium.js";
import { serveDist } from "../tools/static-server.js";
import { defaultLayerConfig, trainRun } from "../src/lib/moe-layer.js";
import type { BenchRow } from "./timing.js";

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
  try {
    const page = await browser.newPage();
    await page.goto(site.url + "live-training");
    await page.waitForFunction(
      () => document.querySelector("[data-testid=live-status]")?.textContent === "done",
      null,
      { timeout: 120_000 },
    );
    const rate = Number(await page.getByTestId("live-speed").textContent());
    rows.push({
      suite: "live training",
      case: "same in headless Chromium (page, 12 ms slices)",
      value: rate,
      unit: "st/s",
      note: `target ≥ 20; ${rate >= 20 ? "met" : "MISSED"}`,
    });
  } finally {
    await browser.close();
    await site.close();
  }
  return rows;
}
