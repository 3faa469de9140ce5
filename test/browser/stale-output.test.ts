// Nothing on screen outlives its reason. Framework removes a cell's output only
// when the cell displays again, so a cell whose new run displays nothing keeps
// its last output: a form for a file that failed, a menu for a source no longer
// chosen, an error from a run that was replaced. Each case here went stale
// before its cell displayed a blank in every branch; one of them, a Compute
// button left from the file before, took a press meant for the next file and
// computed nothing (a CI run waited ten minutes for numbers).
import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { testTimeout } from "../../tools/chromium.js";
import { scratchDir, useBuiltSite } from "./fixture.js";
import { writeNpy } from "../../src/lib/io/npy.js";

const built = useBuiltSite();
const dir = scratchDir("moe-lab-stale-");

function save(name: string, bytes: Uint8Array | string): string {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}

test(
  "your logits: a file whose header fails takes the last file's settings and Compute button with it",
  { timeout: testTimeout },
  async () => {
    const { page, problems } = await built.open("your-logits");
    const compute = page.getByRole("button", { name: "Compute" });
    const topK = page.getByLabel("top_k", { exact: true });
    // a file that reads: its settings and button appear
    await page.locator("input[type=file]").setInputFiles(save("fine.npy", writeNpy(new Float32Array(16), [2, 8])));
    await page.getByTestId("file-description").filter({ hasText: "fine.npy" }).waitFor();
    await compute.waitFor();
    assert.equal(await topK.count(), 1);
    // then one that fails as its header is read: neither may stay
    await page.locator("input[type=file]").setInputFiles(save("empty.npy", ""));
    await page.getByTestId("file-error").filter({ hasText: "empty.npy:" }).waitFor();
    await compute.waitFor({ state: "detached" });
    await topK.waitFor({ state: "detached" });
    // and a press after the next file is described computes that file
    await page.locator("input[type=file]").setInputFiles(save("next.npy", writeNpy(new Float32Array(16), [2, 8])));
    await compute.click();
    await page.locator("[data-testid=your-losses], [data-testid=file-error]").first().waitFor();
    assert.equal(await page.getByTestId("file-error").count(), 0, "next.npy computes");
    assert.deepEqual(problems, []);
    await page.close();
  },
);

test(
  "your framework: the checkpoint menu, the file picker and its top-k box leave with their source",
  { timeout: testTimeout },
  async () => {
    const { page, problems } = await built.open("your-framework");
    const checkpoint = page.getByLabel("checkpoint", { exact: true });
    const picker = page.locator("input[type=file]");
    const topK = page.getByLabel("top-k (the file does not say)");
    await page.getByLabel("OLMoE-mini", { exact: true }).check();
    await checkpoint.waitFor();
    await page.getByLabel("synthetic", { exact: true }).check();
    await checkpoint.waitFor({ state: "detached" });
    // a file without top_k asks for it
    await page.getByLabel("your file", { exact: true }).check();
    await picker.setInputFiles(
      save(
        "no-top-k.npy",
        writeNpy(
          Float32Array.from({ length: 32 }, (_, i) => i % 5),
          [4, 8],
        ),
      ),
    );
    await topK.waitFor();
    await page.getByLabel("synthetic", { exact: true }).check();
    await picker.waitFor({ state: "detached" });
    await topK.waitFor({ state: "detached" });
    assert.deepEqual(problems, []);
    await page.close();
  },
);

test("live training: a run's error goes away when a later run trains", { timeout: testTimeout }, async () => {
  // The page's first worker (its spare, started with the page) fails as it starts; the
  // next one, which new settings take, is the real one.
  let served = 0;
  const { page, problems } = await built.open("live-training", async (p) => {
    await p.route(/\/train-worker\.[0-9a-f]+\.js$/, (route) =>
      ++served === 1
        ? route.fulfill({ contentType: "text/javascript", body: "throw new Error('a worker that fails to start')" })
        : route.continue(),
    );
  });
  const error = page.getByTestId("live-error");
  await error.waitFor();
  assert.match((await error.textContent()) ?? "", /the training worker failed/);
  await page.getByLabel("LBL per micro-batch", { exact: true }).check();
  await page.waitForFunction(
    () =>
      document.querySelector("[data-testid=live-strategy]")?.textContent === "lbl-micro" &&
      document.querySelector("[data-testid=live-status]")?.textContent === "done",
  );
  assert.equal(await error.count(), 0, "no error left from the failed run");
  // the failed worker's error reached the console; nothing else did
  assert.ok(
    problems.every((p) => /a worker that fails to start/.test(p)),
    problems.join("\n"),
  );
  await page.close();
});
