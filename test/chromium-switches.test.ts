// tools/chromium.ts passes its own --disable-features, which replaces
// Playwright's (Chromium reads only the last): it must repeat every feature the
// installed playwright-core turns off, or an upgrade would quietly turn one back on.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { playwrightDisabledFeatures } from "../tools/chromium.js";

/** The `disabledFeatures` list of the installed playwright-core (chromiumSwitches.ts, bundled into lib/coreBundle.js). */
function installedDisabledFeatures(): string[] {
  const root = dirname(createRequire(import.meta.url).resolve("playwright-core/package.json"));
  const bundle = readFileSync(join(root, "lib", "coreBundle.js"), "utf8");
  const list = /disabledFeatures = \[([\s\S]*?)\]\.filter\(Boolean\)/.exec(bundle);
  assert.ok(list, "playwright-core's disabledFeatures list was not found: read chromiumSwitches.ts again");
  const withoutComments = list[1].replace(/\/\/[^\n]*/g, "");
  return [...withoutComments.matchAll(/"([^"]+)"/g)].map((m) => m[1]);
}

test("our --disable-features repeats every feature playwright-core turns off", () => {
  const installed = installedDisabledFeatures();
  assert.ok(installed.length >= 5, `only ${installed.length} features read`);
  assert.deepEqual(
    installed.filter((feature) => !playwrightDisabledFeatures.includes(feature)),
    [],
    "add these to playwrightDisabledFeatures in tools/chromium.ts",
  );
});
