// The setup every browser test file shares: the built site served under the
// GitHub Pages sub-path, one headless Chromium context for the file, pages
// opened with a watch on console errors and failed requests, a scratch
// folder for files the tests write, and the CLI to compare numbers with.
import assert from "node:assert/strict";
import { after, before } from "node:test";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { BrowserContext, Page } from "playwright-core";
import { launch, watchProblems } from "../../tools/chromium.js";
import { olmoeMini } from "../../src/lib/model/olmoe-mini.js";
// The browser tests' scratch folders are the other tests' (removed after the file's tests).
export { scratchDir } from "../helpers.js";
import { serveDist, type StaticSite } from "../../tools/static-server.js";

export const root = fileURLToPath(new URL("../../", import.meta.url));

/** A test's `skip` where it needs a trained checkpoint: false, or why not. */
export const noCheckpoint = olmoeMini.checkpoints.some((c) => existsSync(`${root}data/models/${c}.onnx`))
  ? false
  : "no OLMoE-mini checkpoint in data/models yet";
const dist = `${root}dist/`;

export interface BuiltSite {
  readonly site: StaticSite;
  readonly browser: BrowserContext;
  /**
   * Opens `path` (relative to the site's base) and waits for the network to
   * settle; `beforeLoad` sees the page first (to listen to its requests).
   */
  open(path: string, beforeLoad?: (page: Page) => void | Promise<void>): Promise<{ page: Page; problems: string[] }>;
}

/** Serves dist/ and launches Chromium before the file's tests; closes both after them. */
export function useBuiltSite(options: { webgpu?: boolean } = {}): BuiltSite {
  let site: StaticSite | undefined;
  let browser: BrowserContext | undefined;
  before(async () => {
    assert.ok(existsSync(dist), "dist/ is missing: run `npm run build` first (npm test does)");
    site = await serveDist(dist);
    browser = await launch(options);
  });
  after(async () => {
    await browser?.close();
    await site?.close();
  });
  const ready = () => {
    if (!site || !browser) throw new Error("the site is not served yet: call open() inside a test");
    return { site, browser };
  };
  return {
    get site() {
      return ready().site;
    },
    get browser() {
      return ready().browser;
    },
    async open(path: string, beforeLoad?: (page: Page) => void | Promise<void>) {
      const { site, browser } = ready();
      const page = await browser.newPage();
      const problems = watchProblems(page);
      await beforeLoad?.(page);
      await page.goto(site.url + path, { waitUntil: "networkidle" });
      return { page, problems };
    },
  };
}

/** `moe-lab losses PATH ARGS…` as a subprocess: the JSON record it prints (the tests read it field by field). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function cliRecord(path: string, ...args: string[]): any {
  return JSON.parse(
    execFileSync(process.execPath, [`${root}bin/moe-lab.js`, "losses", path, ...args], { encoding: "utf8" }),
  );
}
