/**
 * Debian's Chromium driven by playwright-core: never a downloaded browser.
 * WebGPU is offered through SwiftShader so the WebGPU path can be tested on
 * a machine with no GPU.
 */
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/**
 * The features Playwright turns off (playwright-core 1.65.1,
 * packages/playwright-core/src/server/chromium/chromiumSwitches.ts,
 * `disabledFeatures`). Chromium reads only the last `--disable-features`, so
 * ours must repeat them; test/chromium-switches.test.ts checks that this list
 * still holds every one the installed playwright-core turns off.
 */
export const playwrightDisabledFeatures = [
  "AvoidUnnecessaryBeforeUnloadCheckSync",
  "DestroyProfileOnBrowserClose",
  "HttpsUpgrades",
  "HttpsFirstBalancedModeAutoEnable",
  "LensOverlay",
  "MediaRouter",
  "PaintHolding",
  "ThirdPartyStoragePartitioning",
  "AvoidCorsURLLoaderRestartOnRedirect",
  "TcpPortRandomizationWin",
  "OptimizationHints",
  "NetworkTimeServiceQuerying",
  "AimEnabled",
  "PreconnectToSearch",
  "msForceBrowserSignIn",
  "msEdgeUpdateLaunchServicesPreferredVersion",
];

/**
 * Debian's Chromium 156 opens the omnibox's popup as a WebUI page in a
 * renderer of its own (`--top-chrome-webui`) as it starts, even headless:
 * ~1.2 s of CPU in the second after `launch` returns, on two cores shared with
 * whatever page is opened at once. A reader's browser did that when it
 * started, not when they opened a page of the lab, so a cold visit timed
 * beside it read 0.7–1 s slow (interleaved visits, medians of 5–7: z-loss's
 * live table 3.53 against 2.67 s, granularity's 3.08 against 2.11 s, the
 * ablation's 3.75 against 2.67 s). Turning off both popups leaves no such
 * renderer; test/browser/harness.test.ts checks that none starts.
 */
export const omniboxWebUiFeatures = ["WebUIOmniboxPopup", "WebUIOmniboxAimPopup"];

const profiles = new WeakMap<BrowserContext, string>();

/** The profile folder a context from `launch` runs in: its processes carry it as `--user-data-dir`. */
export function profileOf(context: BrowserContext): string | undefined {
  return profiles.get(context);
}

export async function launch(options: { webgpu?: boolean } = {}): Promise<BrowserContext> {
  const args = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-dev-shm-usage",
    `--disable-features=${[...playwrightDisabledFeatures, ...omniboxWebUiFeatures].join(",")}`,
  ];
  if (options.webgpu) args.push("--enable-unsafe-webgpu", "--use-webgpu-adapter=swiftshader");
  // A fresh profile each launch (a cold cache), removed when the browser closes: a bench run
  // launches some forty, and each leaves 4-70 MB of cache behind.
  const profile = mkdtempSync(join(tmpdir(), "moe-lab-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    args,
    viewport: { width: 1200, height: 900 },
  });
  // After close() resolves, when the browser has exited (its "close" event comes while it still writes).
  const close = context.close.bind(context);
  context.close = async (...args) => {
    await close(...args);
    try {
      rmSync(profile, { recursive: true, force: true, maxRetries: 5 });
    } catch {
      // a leftover profile in the temporary folder is not worth failing a test or a bench run over
    }
  };
  profiles.set(context, profile);
  context.setDefaultTimeout(patience);
  context.setDefaultNavigationTimeout(patience);
  return context;
}

/**
 * Opens in `page` an empty document of the site at `siteUrl` (served by the
 * test itself, none of the site's scripts): a module worker must be
 * same-origin with its page, and this lets the site's own worker run alone.
 */
export async function openBlankPage(page: Page, siteUrl: string): Promise<void> {
  const blank = `${siteUrl}__blank.html`;
  await page.route(blank, (route) =>
    route.fulfill({ contentType: "text/html", body: "<!doctype html><title>blank</title>" }),
  );
  await page.goto(blank);
}

/** Collects console errors, page errors and failed requests of a page. */
export function watchProblems(page: Page): string[] {
  const problems: string[] = [];
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(`console error: ${message.text()}`);
  });
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  page.on("requestfailed", (request) =>
    problems.push(`request failed: ${request.url()} (${request.failure()?.errorText})`),
  );
  page.on("response", (response) => {
    if (response.status() >= 400) problems.push(`HTTP ${response.status()}: ${response.url()}`);
  });
  return problems;
}

/**
 * How long a browser test waits for something that will come: the machine may
 * be shared with a build or a training run, so no wait races a short fixed
 * timeout. Waits end as soon as their element, event or value arrives; this is
 * only the point at which a test gives up. MOE_LAB_TEST_PATIENCE_MS overrides it.
 */
export const patience = Number(process.env.MOE_LAB_TEST_PATIENCE_MS ?? 600_000);
/** A whole browser test's limit: a few waits of `patience` each. */
export const testTimeout = 3 * patience;
