// Screenshots of built pages, served under the Pages sub-path: `npx tsx scripts/shot.mts [page ...]`.
import { serveDist } from "../tools/static-server.js";
import { launch, watchProblems } from "../tools/chromium.js";
const site = await serveDist(new URL("../dist", import.meta.url).pathname);
const context = await launch();
for (const path of process.argv.slice(2).length ? process.argv.slice(2) : [""]) {
  const page = await context.newPage();
  const problems = watchProblems(page);
  await page.goto(site.url + path, { waitUntil: "networkidle" });
  await page.waitForTimeout(Number(process.env.SHOT_WAIT ?? 1000));
  const file = `/tmp/shot-${path.replace(/\W/g, "_") || "index"}.png`;
  await page.screenshot({ path: file, fullPage: true });
  const errors = await page.$$eval(".observablehq--error, .katex-error", (els) => els.map((e) => e.textContent));
  console.log(file, { problems: problems.slice(0, 5), errors: errors.slice(0, 5) });
  await page.close();
}
console.log("outside base:", site.outside);
await context.close();
await site.close();
