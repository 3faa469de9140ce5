#!/usr/bin/env node
// Writes src/vendor/katex.css and src/vendor/inputs.css from node_modules
// before every build and dev server start. Framework's CSS bundler cannot
// load font files, and offline the CDN is not there: so KaTeX's woff2 fonts
// are inlined as data URLs (woff and ttf fallbacks dropped: every browser
// that runs WebGPU or WASM SIMD reads woff2).
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

const require = createRequire(import.meta.url);
const katexDir = dirname(require.resolve("katex/dist/katex.min.css"));
const out = new URL("../src/vendor/", import.meta.url);
mkdirSync(out, { recursive: true });

const katexCss = readFileSync(join(katexDir, "katex.min.css"), "utf8").replace(/src:([^;}]*)/g, (_, sources) => {
  const woff2 = /url\((fonts\/[^)]+\.woff2)\)/.exec(sources);
  if (!woff2) throw new Error(`no woff2 source in KaTeX's @font-face: ${sources}`);
  const data = readFileSync(join(katexDir, woff2[1])).toString("base64");
  return `src:url(data:font/woff2;base64,${data}) format("woff2")`;
});
writeFileSync(new URL("katex.css", out), katexCss);

const inputsCss = readFileSync(require.resolve("@observablehq/inputs/dist/index.css"), "utf8");
writeFileSync(new URL("inputs.css", out), inputsCss);
