// "Your router logits" in headless Chromium: valid files give exactly what
// `moe-lab losses` prints for them, broken ones one clear message, and
// nothing is requested over the network while a file is processed.
import { test } from "node:test";
import assert from "node:assert/strict";
import { truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { testTimeout } from "../../tools/chromium.js";
import { eventually } from "./eventually.js";
import { cliRecord, scratchDir, useBuiltSite } from "./fixture.js";
import { npyHeader, writeNpy } from "../../src/lib/io/npy.js";
import { writeSafetensors } from "../../src/lib/io/safetensors.js";
import { normalGenerator } from "../../src/lib/random.js";

const built = useBuiltSite();
const dir = scratchDir("moe-lab-drop-");

function logits(layers: number, tokens: number, experts: number, seed: number): Float32Array {
  const normal = normalGenerator(seed);
  const skew = Array.from({ length: experts }, () => normal());
  return Float32Array.from({ length: layers * tokens * experts }, (_, i) => skew[i % experts] + 1.3 * normal());
}

function save(name: string, bytes: Uint8Array | string): string {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}

const cli = cliRecord;

async function open(): Promise<{ page: Page; problems: string[]; requests: string[] }> {
  const seen: string[] = [];
  const { page, problems } = await built.open("your-logits", (p) => void p.on("request", (r) => seen.push(r.url())));
  // The page fetches its parsing worker and the OLMoE-mini reference data once, as its
  // cells run (later than "network idle" on a loaded machine): wait for both, then
  // record what is requested from here on, which must be nothing.
  await eventually(async () => {
    assert.ok(
      seen.some((u) => /logits-worker\.[0-9a-f]+\.js$/.test(u)),
      "the parsing worker was loaded",
    );
    assert.ok(
      seen.some((u) => /ablation\.[0-9a-f]+\.json$/.test(u)),
      "the reference data was loaded",
    );
  });
  const requests: string[] = [];
  page.on("request", (r) => {
    if (!r.url().startsWith("blob:") && !r.url().startsWith("data:")) requests.push(r.url());
  });
  return { page, problems, requests };
}

async function drop(page: Page, path: string): Promise<void> {
  await page.locator("input[type=file]").setInputFiles(path);
}

/** Waits for the numbers, or fails at once with the page's error (rather than waiting for numbers that never come). */
async function numbersShown(page: Page): Promise<void> {
  await page.locator("[data-testid=your-losses], [data-testid=file-error]").first().waitFor();
  const errors = await page.getByTestId("file-error").allTextContents();
  assert.deepEqual(errors, [], "the page showed an error instead of numbers");
}

const families = ["lbl", "z_loss", "cv2", "max_vio"] as const;

/** The page's JSON export is the CLI's record: the same loads, every loss within 1e-9. */
async function assertExportIs(page: Page, expected: Record<string, unknown>): Promise<void> {
  const href = await page.getByTestId("export-json").getAttribute("href");
  const exported = JSON.parse(await page.evaluate(async (url) => (await fetch(url!)).text(), href));
  assert.deepEqual(exported.load, expected.load);
  for (const family of families)
    for (const [key, value] of Object.entries(expected[family] as Record<string, number>))
      assert.ok(
        Math.abs(exported[family][key] - value) <= 1e-9 * Math.max(1, Math.abs(value)),
        `export ${family}.${key}: ${exported[family][key]} vs ${value}`,
      );
}

for (const [name, make, args] of [
  [
    "safetensors, one tensor per layer, top_k and sequence lengths in metadata",
    () =>
      save(
        "layers.safetensors",
        writeSafetensors(
          Object.fromEntries(
            [0, 1, 2].map((l) => [`model.layers.${l}.router`, { data: logits(1, 600, 16, 10 + l), shape: [600, 16] }]),
          ),
          { top_k: "4", sequence_lengths: "[200, 200, 200]" },
        ),
      ),
    [] as string[],
  ],
  [
    "npy [L, T, E], top_k asked for",
    () => save("stack.npy", writeNpy(logits(2, 500, 8, 3), [2, 500, 8])),
    ["--top-k", "2"],
  ],
  [
    "JSON in the CLI's shape",
    () =>
      save(
        "small.json",
        JSON.stringify({
          router_logits: [
            [
              [0.1, 2, -1, 0.5],
              [1, 1, 0, -2],
              [0.3, -0.2, 0.9, 0.1],
            ],
          ],
          top_k: 2,
          sequence_lengths: [1, 2],
        }),
      ),
    [],
  ],
] as const) {
  test(`valid file: ${name} — the page shows what moe-lab losses prints`, { timeout: testTimeout }, async () => {
    const path = make();
    const expected = cli(path, ...args);
    const { page, problems, requests } = await open();
    await drop(page, path);
    await page.waitForSelector("[data-testid=file-description]");
    if (args.length)
      await page
        .locator("form", { has: page.locator("label", { hasText: "top_k" }) })
        .locator("input[type=number]")
        .fill(String(args[1]));
    await page.getByRole("button", { name: "Compute" }).click();
    await numbersShown(page);
    for (const family of families) {
      for (const [key, value] of Object.entries(expected[family] as Record<string, number>)) {
        const shown = Number(await page.getByTestId(`your-${family}.${key}`).textContent());
        assert.ok(
          Math.abs(shown - value) <= 1e-6 * Math.max(1, Math.abs(value)),
          `${family}.${key}: page ${shown} vs CLI ${value}`,
        );
      }
    }
    // the JSON export is the CLI's record
    await assertExportIs(page, expected);
    assert.deepEqual(
      requests.filter((u) => !u.startsWith("blob:")),
      [],
      "no request while the file is processed",
    );
    assert.deepEqual(problems, []);
    await page.close();
  });
}

const good = writeSafetensors({ x: { data: logits(2, 50, 8, 1), shape: [2, 50, 8] } }, { top_k: "2" });
const broken: [string, string, Uint8Array | string, RegExp][] = [
  ["truncated file", "t.npy", writeNpy(logits(2, 50, 8, 1), [2, 50, 8]).slice(0, 900), /truncated/],
  [
    "header that lies about its length",
    "lie.safetensors",
    (() => {
      const b = good.slice();
      new DataView(b.buffer).setBigUint64(0, BigInt(b.length), true);
      return b;
    })(),
    /header claims/,
  ],
  [
    "dtype we do not read",
    "int.safetensors",
    new TextEncoder().encode(new TextDecoder().decode(good).replace('"F32"', '"I64"')),
    /dtype I64.*F16, BF16, F32 or F64/,
  ],
  ["NaN inside", "nan.npy", writeNpy(Float32Array.from([0, 1, NaN, 2]), [2, 2]), /token 1, expert 0 is NaN/],
  [
    "inconsistent layer shapes",
    "ragged.safetensors",
    writeSafetensors({
      "l.0": { data: new Float32Array(16), shape: [2, 8] },
      "l.1": { data: new Float32Array(14), shape: [2, 7] },
    }),
    /inconsistent layers/,
  ],
  ["empty file", "empty.npy", new Uint8Array(0), /is empty/],
  [
    "huge header",
    "huge.safetensors",
    (() => {
      const b = new Uint8Array(64);
      new DataView(b.buffer).setBigUint64(0, 1n << 40n, true);
      return b;
    })(),
    /refused/,
  ],
  [
    "not what its extension says",
    "json.npy",
    '{"router_logits": [[[1, 2]]]}',
    /named \.npy but its contents look like json/,
  ],
];

test("broken files each end in one clear message and the page stays usable", { timeout: testTimeout }, async () => {
  const { page, problems, requests } = await open();
  for (const [what, name, bytes, message] of broken) {
    await drop(page, save(name, bytes));
    const error = page.getByTestId("file-error").filter({ hasText: `${name}:` });
    // some problems show when the header is read, others when the rows are:
    // wait for this file's error or for its header to be described
    const described = page.getByTestId("file-description").filter({ hasText: name });
    await error.or(described).first().waitFor();
    if (!(await error.count())) {
      await page.getByRole("button", { name: "Compute" }).click();
      await error.waitFor();
    }
    assert.match((await error.first().textContent()) ?? "", message, what);
  }
  // and a good file still works afterwards
  await drop(page, save("good.safetensors", good));
  await page.getByTestId("file-description").filter({ hasText: "good.safetensors" }).waitFor();
  await page.getByRole("button", { name: "Compute" }).click();
  await numbersShown(page);
  // a broken file after a good one: its numbers must not stay on screen
  await drop(page, save("after.npy", writeNpy(Float32Array.from([0, NaN]), [1, 2])));
  // Its header read first: until then the button on screen is the good file's, and a press of it
  // computes that file (a run of the browser tests, two files at a time, pressed it and waited 90 s).
  await page.getByTestId("file-description").filter({ hasText: "after.npy" }).waitFor();
  await page.getByRole("button", { name: "Compute" }).click();
  await page.getByTestId("file-error").filter({ hasText: "after.npy:" }).waitFor();
  assert.equal(await page.getByTestId("your-losses").count(), 0, "no stale numbers from the previous file");
  assert.deepEqual(requests, [], "nothing sent over the network");
  assert.deepEqual(problems, []);
  await page.close();
});

test("a file dropped on the drop zone is read like a picked one", { timeout: testTimeout }, async () => {
  const bytes = writeNpy(logits(1, 40, 8, 9), [40, 8]);
  const path = save("dropped.npy", bytes);
  const expected = cli(path, "--top-k", "2");
  const { page, problems } = await open();
  await page.evaluate((data) => {
    const transfer = new DataTransfer();
    transfer.items.add(new File([new Uint8Array(data)], "dropped.npy"));
    const zone = document.getElementById("drop-zone")!;
    zone.dispatchEvent(new DragEvent("dragover", { dataTransfer: transfer, bubbles: true, cancelable: true }));
    zone.dispatchEvent(new DragEvent("drop", { dataTransfer: transfer, bubbles: true, cancelable: true }));
  }, Array.from(bytes));
  await page.waitForSelector("[data-testid=file-description]");
  assert.match((await page.getByTestId("file-description").textContent()) ?? "", /dropped\.npy/);
  await page
    .locator("form", { has: page.locator("label", { hasText: "top_k" }) })
    .locator("input[type=number]")
    .fill("2");
  await page.getByRole("button", { name: "Compute" }).click();
  await numbersShown(page);
  assert.ok(Math.abs(Number(await page.getByTestId("your-lbl.switch").textContent()) - expected.lbl.switch) < 1e-6);
  assert.deepEqual(problems, []);
  await page.close();
});

test(
  "a second file chosen while the first streams shows only the second file's numbers",
  { timeout: testTimeout },
  async () => {
    // ~256 MiB of float32 logits: long enough to still be streaming when the second file arrives
    const bigPath = join(dir, "big-first.npy");
    const tokens = 1 << 20;
    const head = npyHeader("<f4", [1, tokens, 64]);
    writeFileSync(bigPath, head);
    truncateSync(bigPath, head.length + tokens * 64 * 4); // extends with zeros: valid logits
    const smallPath = save("second.npy", writeNpy(logits(2, 300, 8, 21), [2, 300, 8]));
    const expected = cli(smallPath, "--top-k", "2");

    const { page, problems } = await open();
    await drop(page, bigPath);
    await page.getByTestId("file-description").filter({ hasText: "big-first.npy" }).waitFor();
    await page.getByRole("button", { name: "Compute" }).click();
    await page.locator("progress").waitFor(); // the first file is streaming now
    await drop(page, smallPath);
    await page.getByTestId("file-description").filter({ hasText: "second.npy" }).waitFor();
    await page
      .locator("form", { has: page.locator("label", { hasText: "top_k" }) })
      .locator("input[type=number]")
      .fill("2");
    await page.getByRole("button", { name: "Compute" }).click();
    await numbersShown(page);
    for (const family of families) {
      for (const [key, value] of Object.entries(expected[family] as Record<string, number>)) {
        const shown = Number(await page.getByTestId(`your-${family}.${key}`).textContent());
        assert.ok(
          Math.abs(shown - value) <= 1e-6 * Math.max(1, Math.abs(value)),
          `${family}.${key}: page ${shown} vs CLI ${value} for the second file`,
        );
      }
    }
    assert.equal(await page.getByText("big-first.npy").count(), 0, "nothing about the first file remains on screen");
    assert.equal(await page.getByTestId("file-error").count(), 0);
    assert.deepEqual(problems, []);
    await page.close();
  },
);

test(
  "a press of Compute in the same moment as an edit computes with the edit; a later edit clears the numbers",
  { timeout: testTimeout },
  async () => {
    const path = save(
      "edit-then-press.safetensors",
      writeSafetensors({ x: { data: logits(2, 300, 8, 43), shape: [2, 300, 8] } }, { top_k: "2" }),
    );
    const expected = cli(path, "--score", "sigmoid");
    assert.notDeepEqual(expected.lbl, cli(path).lbl, "the LBL balances sigmoid scores otherwise");
    const { page, problems } = await open();
    await drop(page, path);
    await page.getByTestId("file-description").filter({ hasText: "edit-then-press" }).waitFor();
    // The edit and the press in one task: the button's cell has not re-run for the edit when it is pressed.
    await page.evaluate(() => {
      const field = [...document.querySelectorAll("form")].find((f) => f.textContent?.includes("score function"))!;
      const select = field.querySelector("select")!;
      select.selectedIndex = [...select.options].findIndex((o) => o.textContent === "sigmoid");
      select.dispatchEvent(new Event("input", { bubbles: true }));
      [...document.querySelectorAll("button")].find((b) => b.textContent === "Compute")!.click();
    });
    await numbersShown(page);
    assert.match((await page.getByTestId("routing-note").textContent()) ?? "", /sigmoid/);
    await assertExportIs(page, expected);
    // an edit after the press: the numbers on screen would no longer be the form's
    await page
      .locator("form", { has: page.locator("label", { hasText: "top_k" }) })
      .locator("input[type=number]")
      .fill("3");
    await page.getByTestId("your-losses").waitFor({ state: "detached" });
    await page.getByText("Press Compute to read every row.").waitFor();
    assert.deepEqual(problems, []);
    await page.close();
  },
);

test(
  "a sigmoid, grouped, biased router: the page routes the file as moe-lab losses does with the same options",
  { timeout: testTimeout },
  async () => {
    const path = save("sigmoid.npy", writeNpy(logits(2, 300, 16, 41), [2, 300, 16]));
    const bias = [0, 1].map((l) => Array.from({ length: 16 }, (_, e) => (((e * 5 + l) % 7) - 3) * 0.04));
    const biasPath = save("sigmoid-bias.json", JSON.stringify(bias));
    const options = [
      "--top-k",
      "4",
      "--score",
      "sigmoid",
      "--groups",
      "4",
      "--topk-groups",
      "2",
      "--scaling-factor",
      "2.5",
    ];
    const expected = cli(path, ...options, "--bias", biasPath);
    const plain = cli(path, "--top-k", "4");
    assert.notDeepEqual(expected.load, plain.load, "the convention changes the route");

    const { page, problems } = await open();
    await drop(page, path);
    await page.waitForSelector("[data-testid=file-description]");
    const field = (label: string) => page.locator("form", { has: page.locator("label", { hasText: label }) });
    await field("top_k").locator("input[type=number]").fill("4");
    await field("score function").locator("select").selectOption({ label: "sigmoid" });
    await field("expert groups").locator("input").fill("4");
    await field("groups kept").locator("input").fill("2");
    await field("scaling factor").locator("input").fill("2.5");
    await field("expert bias (JSON)").locator("textarea").fill(JSON.stringify(bias));
    await page.getByRole("button", { name: "Compute" }).click();
    await page.getByTestId("routing-note").filter({ hasText: "sigmoid scores" }).waitFor();
    await assertExportIs(page, expected);
    assert.match(
      (await page.getByTestId("routing-note").textContent()) ?? "",
      /4 groups with 2 kept .*top-4.*× 2\.5.*your expert bias/,
    );
    // the aux loss's own map beside the route, layer by layer as the CLI reports it
    const auxRows = await page.getByTestId("aux-map").locator("tr").allTextContents();
    for (const l of [0, 1]) {
      const cells = (
        await page
          .getByTestId("aux-map")
          .locator("tr")
          .nth(2 + l)
          .locator("td")
          .allTextContents()
      ).map((c) => c.trim());
      assert.deepEqual(
        cells,
        [
          String(l),
          `${(100 * expected.routing.aux_map.tokens_differing[l]).toFixed(1)} %`,
          expected.routing.aux_map.max_vio_route[l].toFixed(3),
          expected.routing.aux_map.max_vio_aux_map[l].toFixed(3),
          expected.routing.aux_map.lbl_route[l].toFixed(4),
          expected.routing.aux_map.lbl_aux_map[l].toFixed(4),
        ],
        `layer ${l} of ${auxRows.length - 1} rows`,
      );
    }

    // a contradiction is one message, and the page keeps working
    await field("routing preset").locator("select").selectOption({ label: "DeepSeek-V3" });
    await page.getByRole("button", { name: "Compute" }).click();
    await page.getByTestId("file-error").filter({ hasText: "DeepSeek-V3 preset has" }).waitFor();
    assert.deepEqual(problems, []);
    await page.close();
  },
);

test(
  "a .safetensors file with its own expert bias: the page says so, routes by it as the CLI does, and can ignore it",
  { timeout: testTimeout },
  async () => {
    const data = logits(2, 200, 16, 43);
    const bias = Float32Array.from({ length: 2 * 16 }, (_, i) => (((i * 5) % 7) - 3) / 16);
    const path = save(
      "with-bias.safetensors",
      writeSafetensors(
        {
          "layer.0": { data: data.slice(0, 200 * 16), shape: [200, 16] },
          "layer.1": { data: data.slice(200 * 16), shape: [200, 16] },
          "decoder.layers.0.mlp.router.expert_bias": { data: bias.slice(0, 16), shape: [16] },
          "decoder.layers.1.mlp.router.expert_bias": { data: bias.slice(16), shape: [16] },
        },
        { top_k: "4" },
      ),
    );
    const expected = cli(path, "--score", "sigmoid");
    const ignored = cli(path, "--score", "sigmoid", "--ignore-file-bias");
    assert.notDeepEqual(expected.load, ignored.load, "the file's bias moves the route");

    const { page, problems } = await open();
    await drop(page, path);
    assert.match(
      (await page.getByTestId("file-bias").textContent()) ?? "",
      /'decoder\.layers\.0\.mlp\.router\.expert_bias', 'decoder\.layers\.1\.mlp\.router\.expert_bias'/,
    );
    const field = (label: string) => page.locator("form", { has: page.locator("label", { hasText: label }) });
    await field("score function").locator("select").selectOption({ label: "sigmoid" });
    await page.getByRole("button", { name: "Compute" }).click();
    await page.getByTestId("routing-note").filter({ hasText: "the file's expert bias" }).waitFor();
    await assertExportIs(page, expected);
    await field("ignore the file's expert bias").locator("input[type=checkbox]").check();
    await page.getByRole("button", { name: "Compute" }).click();
    await page.getByTestId("routing-note").filter({ hasNotText: "the file's expert bias" }).waitFor();
    await assertExportIs(page, ignored);
    // a pasted bias beside the file's: one message, and the page keeps working
    await field("ignore the file's expert bias").locator("input[type=checkbox]").uncheck();
    await field("expert bias (JSON)")
      .locator("textarea")
      .fill(JSON.stringify(new Array(16).fill(0)));
    await page.getByRole("button", { name: "Compute" }).click();
    await page.getByTestId("file-error").filter({ hasText: "carries its own expert bias" }).waitFor();
    assert.deepEqual(problems, []);
    await page.close();
  },
);
