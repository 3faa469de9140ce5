/**
 * `npm run preview`: serves the built site (dist/) as GitHub Pages would, under
 * the Pages sub-path with clean URLs and the site's 404 page, at
 * http://127.0.0.1:4173/moe-balance-lab/ (PORT and MOE_LAB_BASE change it).
 * Build first: `npm run build`.
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { serveDist } from "../tools/static-server.js";

const dist = fileURLToPath(new URL("../dist/", import.meta.url));
if (!existsSync(`${dist}index.html`)) {
  console.error("preview: dist/ has no site yet; run `npm run build` first");
  process.exit(2);
}
const base = process.env.MOE_LAB_BASE ?? "/moe-balance-lab/";
const site = await serveDist(dist, base, Number(process.env.PORT ?? 4173)).catch((error: Error) => {
  console.error(`preview: ${error.message}`);
  process.exit(2);
});
console.log(`serving dist/ as GitHub Pages would at ${site.url} (Ctrl-C stops)`);
