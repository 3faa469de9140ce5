// The browser the tests and the bench drive: what it runs besides the page.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { openBlankPage, profileOf, testTimeout } from "../../tools/chromium.js";
import { useBuiltSite } from "./fixture.js";

const built = useBuiltSite();

/**
 * The command lines of every process started with this profile (Linux: read
 * from /proc). Chromium's zygote rewrites a child's command line as one
 * string, so the arguments are read as words of one line.
 */
function processesOf(profile: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync("/proc").filter((name) => /^\d+$/.test(name))) {
    let line: string;
    try {
      line = ` ${readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ")} `;
    } catch {
      continue; // ended while we looked
    }
    if (line.includes(` --user-data-dir=${profile} `)) found.push(line);
  }
  return found;
}

test(
  "the harness's Chromium starts no top-chrome WebUI renderer beside the page it times",
  { skip: process.platform !== "linux" && "reads /proc", timeout: testTimeout },
  async () => {
    const page = await built.browser.newPage();
    try {
      await openBlankPage(page, built.site.url);
      const profile = profileOf(built.browser);
      assert.ok(profile, "launch records its profile");
      const processes = processesOf(profile);
      // Chromium started its renderers and helpers with this profile: the check below looks at real processes.
      assert.ok(
        processes.some((line) => line.includes(" --type=renderer ")),
        `no renderer found among ${processes.length} processes`,
      );
      // The omnibox popup's WebUI renderer starts with the browser (before `launch` returns) when it is on.
      const webUi = processes.filter((line) => line.includes(" --top-chrome-webui "));
      assert.deepEqual(webUi.length, 0, "a --top-chrome-webui renderer is running");
    } finally {
      await page.close();
    }
  },
);
