/**
 * When an element first appears on screen, measured in the page: an init
 * script checks the watched selectors once per animation frame and keeps the
 * time of the first frame in which each matches (ms from the start of
 * navigation, the page's time origin). Playwright's own waits poll with a
 * growing interval (up to 500 ms apart), so the moment a wait returns can be
 * half a second after the element arrived; this is the frame that shows it.
 */
import type { BrowserContext, Page } from "playwright-core";

declare global {
  interface Window {
    __firstFrame?: Record<string, number>;
  }
}

/** Installs the recorder in every page of `context` opened from now on. */
export async function recordFirstFrames(context: BrowserContext, selectors: readonly string[]): Promise<void> {
  await context.addInitScript(
    `(() => {
      const selectors = ${JSON.stringify(selectors)};
      const seen = (window.__firstFrame = {});
      const check = (now) => {
        for (const selector of selectors)
          if (!(selector in seen) && document.querySelector(selector)) seen[selector] = now;
        if (selectors.some((selector) => !(selector in seen))) requestAnimationFrame(check);
      };
      requestAnimationFrame(check);
    })()`,
  );
}

/** Waits until `selector` is on screen and returns the time of the first frame that showed it. */
export async function firstFrameOf(page: Page, selector: string, timeout = 300_000): Promise<number> {
  await page.locator(selector).first().waitFor({ state: "attached", timeout });
  return (await page
    .waitForFunction((s) => window.__firstFrame?.[s], selector, { timeout, polling: 50 })
    .then((handle) => handle.jsonValue())) as number;
}
