#!/usr/bin/env node
// Prepares what the site needs from outside its source root, before every
// build and dev server start (all outputs are git-ignored):
// - src/vendor/katex.css, inputs.css: Framework's CSS bundler cannot load
//   font files and offline there is no CDN, so KaTeX's woff2 fonts are
//   inlined as data URLs (woff/ttf fallbacks dropped: every browser that runs
//   WebGPU or WASM SIMD reads woff2);
// - src/assets/model-worker.js, logits-worker.js: the module workers that run
//   the model (bundled with onnxruntime-web) and parse dropped logits files,
//   bundled by esbuild (Framework has no worker support);
// - src/assets/ort/: onnxruntime-web's WASM runtime, served by the site
//   itself (no CDN), same version as the bundled JavaScript;
// - src/assets/models/, tokenizer.json, samples.json: OLMoE-mini's
//   checkpoints, tokenizer and sample texts from data/.
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { build } from "esbuild";

const require = createRequire(import.meta.url);
const root = new URL("../", import.meta.url);
const vendor = new URL("src/vendor/", root);
const assets = new URL("src/assets/", root);
for (const dir of [vendor, assets, new URL("ort/", assets), new URL("models/", assets)]) mkdirSync(dir, { recursive: true });

const katexDir = dirname(require.resolve("katex/dist/katex.min.css"));
const katexCss = readFileSync(join(katexDir, "katex.min.css"), "utf8").replace(/src:([^;}]*)/g, (_, sources) => {
  const woff2 = /url\((fonts\/[^)]+\.woff2)\)/.exec(sources);
  if (!woff2) throw new Error(`no woff2 source in KaTeX's @font-face: ${sources}`);
  const data = readFileSync(join(katexDir, woff2[1])).toString("base64");
  return `src:url(data:font/woff2;base64,${data}) format("woff2")`;
});
writeFileSync(new URL("katex.css", vendor), katexCss);
writeFileSync(new URL("inputs.css", vendor), readFileSync(require.resolve("@observablehq/inputs/dist/index.css"), "utf8"));

const ortDist = dirname(require.resolve("onnxruntime-web/webgpu"));
// Two builds: the plain SIMD one for the WASM backend, the asyncify one for WebGPU.
for (const file of ["ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm", "ort-wasm-simd-threaded.asyncify.mjs", "ort-wasm-simd-threaded.asyncify.wasm"]) copyFileSync(join(ortDist, file), new URL(`ort/${file}`, assets));

for (const [entry, out] of [["src/lib/model/worker.ts", "model-worker.js"], ["src/lib/io/logits-worker.ts", "logits-worker.js"]]) {
  await build({
    entryPoints: [new URL(entry, root).pathname],
    outfile: new URL(out, assets).pathname,
    bundle: true, format: "esm", platform: "browser", target: "es2022", minify: true, logLevel: "warning",
  });
}

// Only the checkpoints that exist are referenced: Framework fails a build on a
// FileAttachment to a missing file, and a checkpoint may not be trained yet.
const models = new URL("data/models/", root);
const available = existsSync(models) ? readdirSync(models).filter((file) => file.endsWith(".onnx")).sort() : [];
for (const file of available) copyFileSync(new URL(file, models), new URL(`models/${file}`, assets));
writeFileSync(new URL("model-files.js", assets), [
  "// Written by scripts/prepare-assets.mjs: the OLMoE-mini checkpoints in data/models.",
  'import {FileAttachment} from "observablehq:stdlib";',
  "export const modelFiles = {",
  ...available.map((file) => `  ${JSON.stringify(file.replace(/\.onnx$/, ""))}: FileAttachment(${JSON.stringify(`./models/${file}`)}),`),
  "};",
  "",
].join("\n"));
copyFileSync(new URL("data/tokenizer.json", root), new URL("tokenizer.json", assets));
const samples = Object.fromEntries(readdirSync(new URL("data/samples/", root)).map((f) => [f.replace(/\.txt$/, ""), readFileSync(new URL(`data/samples/${f}`, root), "utf8")]));
writeFileSync(new URL("samples.json", assets), JSON.stringify(samples));

// Framework re-runs a data loader only when the loader itself changes; the
// ablation loader reads data/logs and data/metrics, so drop its cached output.
rmSync(new URL("src/.observablehq/cache/data/ablation.json", root), { force: true });
