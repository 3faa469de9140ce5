import { patience } from "../../tools/chromium.js";

/**
 * Retries `check` (an assertion, or anything that throws until the page is
 * ready) until it passes; after `patience`, rethrows its last error, so a
 * failure reads as the assertion that never came true.
 */
export async function eventually<T>(check: () => Promise<T>, within = patience): Promise<T> {
  const deadline = Date.now() + within;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
