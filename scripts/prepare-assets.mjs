#!/usr/bin/env node
// Prepares what the site needs from outside its source root, before every
// build and dev server start (all outputs are git-ignored):
// - src/vendor/katex.css, inputs.css: Framework's CSS bundler cannot load
//   font files and offline there is no CDN, so KaTeX's woff2 fonts are
//   inlined as data URLs (woff/ttf fallbacks dropped: every browser that runs
//   WebGPU or WASM SIMD reads woff2);
// - src/assets/model-worker.js, logits-worker.js, train-worker.js: the module workers that run
//   the model (bundled with onnxruntime-web) and parse dropped logits files,
//   bundled by esbuild (Framework has no worker support);
// - src/assets/ort/: onnxruntime-web's WASM runtime, served by the site
//   itself (no CDN), same version as the bundled JavaScript;
// - src/assets/models/, tokenizer.json, samples.json: OLMoE-mini's
//   checkpoints, tokenizer and sample texts from data/;
// - src/assets/olmoe-mini.js: OLMoE-mini's facts (src/lib/model/olmoe-mini.json)
//   as a module, for pages;
// - src/.observablehq/cache/_npm/<name>@<version>/: Framework's client bundle
//   names every library its implicit imports could load (React for JSX,
//   DuckDB, Arquero, ...) and asks the npm registry for each one's latest
//   version on every build, so a build without network fails even though the
//   lab loads none of them. Framework reads known versions from these folder
//   names first (npm.js, resolveNpmVersion): an empty folder per library pins
//   the version its URL would name, and nothing is fetched. The libraries the
//   lab does use are bare imports bundled from node_modules (_node cache).
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { build } from "esbuild";

const require = createRequire(import.meta.url);
const root = new URL("../", import.meta.url);
const vendor = new URL("src/vendor/", root);
const assets = new URL("src/assets/", root);
for (const dir of [vendor, assets, new URL("ort/", assets), new URL("models/", assets)])
  mkdirSync(dir, { recursive: true });

const katexDir = dirname(require.resolve("katex/dist/katex.min.css"));
const katexCss = readFileSync(join(katexDir, "katex.min.css"), "utf8").replace(/src:([^;}]*)/g, (_, sources) => {
  const woff2 = /url\((fonts\/[^)]+\.woff2)\)/.exec(sources);
  if (!woff2) throw new Error(`no woff2 source in KaTeX's @font-face: ${sources}`);
  const data = readFileSync(join(katexDir, woff2[1])).toString("base64");
  return `src:url(data:font/woff2;base64,${data}) format("woff2")`;
});
writeFileSync(new URL("katex.css", vendor), katexCss);
writeFileSync(
  new URL("inputs.css", vendor),
  readFileSync(require.resolve("@observablehq/inputs/dist/index.css"), "utf8"),
);

const ortDist = dirname(require.resolve("onnxruntime-web/webgpu"));
// Two builds: the plain SIMD one for the WASM backend, the asyncify one for WebGPU.
for (const file of [
  "ort-wasm-simd-threaded.mjs",
  "ort-wasm-simd-threaded.wasm",
  "ort-wasm-simd-threaded.asyncify.mjs",
  "ort-wasm-simd-threaded.asyncify.wasm",
])
  copyFileSync(join(ortDist, file), new URL(`ort/${file}`, assets));

for (const [entry, out] of [
  ["src/workers/model-worker.ts", "model-worker.js"],
  ["src/workers/logits-worker.ts", "logits-worker.js"],
  ["src/workers/train-worker.ts", "train-worker.js"],
]) {
  await build({
    entryPoints: [new URL(entry, root).pathname],
    outfile: new URL(out, assets).pathname,
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    minify: true,
    logLevel: "warning",
  });
}

// Only the checkpoints that exist are referenced: Framework fails a build on a
// FileAttachment to a missing file, and a checkpoint may not be trained yet.
// The pages read router logits and the expert bias only, so they get each
// checkpoint's router-only graph (data/recipe/router_only.py: the same nodes
// up to the last router, ~25 % smaller, ~0.6× the forward time), or the full
// graph where no router-only file was cut.
const models = new URL("data/models/", root);
const onnxFiles = existsSync(models) ? readdirSync(models).filter((file) => file.endsWith(".onnx")) : [];
const checkpoints = onnxFiles
  .filter((file) => !file.endsWith(".router.onnx"))
  .map((file) => file.replace(/\.onnx$/, ""))
  .sort();
const served = checkpoints.map((name) => [
  name,
  onnxFiles.includes(`${name}.router.onnx`) ? `${name}.router.onnx` : `${name}.onnx`,
]);
for (const [, file] of served) copyFileSync(new URL(file, models), new URL(`models/${file}`, assets));
// The full graphs too, for the views that need next-token predictions and the
// route overrides (the playground's counterfactuals, routing consistency):
// only where a router-only graph serves the rest (else it is already copied).
const full = checkpoints.filter((name) => onnxFiles.includes(`${name}.router.onnx`));
for (const name of full) copyFileSync(new URL(`${name}.onnx`, models), new URL(`models/${name}.onnx`, assets));
writeFileSync(
  new URL("model-files.js", assets),
  [
    "// Written by scripts/prepare-assets.mjs: the OLMoE-mini checkpoints in data/models, as the pages load them",
    "// (the router-only graph where there is one).",
    'import {FileAttachment} from "observablehq:stdlib";',
    "export const modelFiles = {",
    ...served.map(
      ([name, file]) => `  ${JSON.stringify(name)}: FileAttachment(${JSON.stringify(`./models/${file}`)}),`,
    ),
    "};",
    "// The full graphs (LM head and route overrides): next-token predictions under a forced route.",
    "export const fullModelFiles = {",
    ...checkpoints.map(
      (name) => `  ${JSON.stringify(name)}: FileAttachment(${JSON.stringify(`./models/${name}.onnx`)}),`,
    ),
    "};",
    "",
  ].join("\n"),
);
writeFileSync(
  new URL("olmoe-mini.js", assets),
  [
    "// Written by scripts/prepare-assets.mjs from src/lib/model/olmoe-mini.json (see src/components/olmoe-mini.js).",
    `export default ${readFileSync(new URL("src/lib/model/olmoe-mini.json", root), "utf8").trim()};`,
    "",
  ].join("\n"),
);
copyFileSync(new URL("data/tokenizer.json", root), new URL("tokenizer.json", assets));
const samples = Object.fromEntries(
  readdirSync(new URL("data/samples/", root)).map((f) => [
    f.replace(/\.txt$/, ""),
    readFileSync(new URL(`data/samples/${f}`, root), "utf8"),
  ]),
);
writeFileSync(new URL("samples.json", assets), JSON.stringify(samples));

// Versions current on the registry on 2026-11-30; the installed version where
// the package is in node_modules. A folder that holds files (a real download,
// from a build with network) is left alone.
const frameworkLibraries = {
  "@duckdb/duckdb-wasm": "1.32.0",
  "@observablehq/sample-datasets": "1.0.1",
  "@uwdata/vgplot": "0.32.0",
  "@viz-js/viz": "3.31.0",
  "apache-arrow": "21.2.0",
  arquero: "8.0.3",
  echarts: "6.1.0",
  exceljs: "4.4.0",
  jszip: "3.10.2",
  leaflet: "1.9.4",
  lodash: "4.18.1",
  "mapbox-gl": "3.32.0",
  mermaid: "12.3.0",
  "parquet-wasm": "0.8.0",
  react: "19.3.1",
  "react-dom": "19.3.1",
  "sql.js": "1.17.0",
  "topojson-client": "3.1.0",
  vega: "6.4.0",
  "vega-lite": "6.5.0",
  "vega-lite-api": "6.0.0",
  d3: null,
  "d3-dsv": null,
  "@observablehq/plot": null,
  "@observablehq/inputs": null,
  htl: null,
  katex: null,
};
const npmCache = new URL("src/.observablehq/cache/_npm/", root);
for (const [name, pinned] of Object.entries(frameworkLibraries)) {
  const version =
    pinned ?? JSON.parse(readFileSync(new URL(`node_modules/${name}/package.json`, root), "utf8")).version;
  const scope = new URL(name.startsWith("@") ? `${name.split("/")[0]}/` : "./", npmCache);
  const known = existsSync(scope) && readdirSync(scope).some((entry) => entry.startsWith(`${name.split("/").pop()}@`));
  if (!known) mkdirSync(new URL(`${name}@${version}/`, npmCache), { recursive: true });
}

// Framework re-runs a data loader only when the loader itself changes; the
// ablation loader reads data/logs and data/metrics, so drop its cached output.
rmSync(new URL("src/.observablehq/cache/data/ablation.json", root), { force: true });
