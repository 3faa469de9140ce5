// A markdown-it plugin for Framework (observablehq.config.ts): a fence
//
//   ```early-model visible=real-z prefetch runs=samples:2
//   ```
//
// starts OLMoE-mini from the page's HTML, before any of its modules (see
// tools/inline/early-model.js, which it inlines).
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type MarkdownIt from "markdown-it";
import { escapeHtml } from "../src/components/real-tables.js";
import { Tokenizer } from "../src/lib/model/tokenizer.js";
import { sampleSequences } from "../src/lib/model/sample-sequences.js";
import { splitIntoWindows } from "../src/lib/model/windows.js";
import { readSampleFiles } from "./sample-files.js";

const root = fileURLToPath(new URL("../", import.meta.url));

/**
 * The token sequences a page routes first, as its cells compute them from the
 * same tokenizer and sample texts (`runs=`):
 * - `samples:N`: the sample batch, N sequences of 128 tokens per domain (routeSampleBatch, perDomain N);
 * - `text:NAME:CHARS`: the first CHARS characters of sample NAME, in windows of the context (the playground);
 * - `tokens:NAME:COUNT`: the first COUNT tokens of sample NAME (the ablation's side-by-side).
 * A page whose first request differs only computes it again (the browser tests check that each page's is reused).
 */
export function firstSequences(spec: string): number[][] {
  const tokenizer = new Tokenizer(JSON.parse(readFileSync(`${root}data/tokenizer.json`, "utf8")));
  const samples = readSampleFiles(new URL("../", import.meta.url));
  const { context } = JSON.parse(readFileSync(`${root}src/lib/model/olmoe-mini.json`, "utf8")) as { context: number };
  const [kind, name, count] = spec.split(":");
  const sample = (what: string) => {
    if (!(what in samples)) throw new Error(`early-model runs=${spec}: no sample ${what}`);
    return samples[what];
  };
  if (kind === "samples") return sampleSequences(tokenizer, samples, 128, Number(name)).map((s) => s.ids);
  if (kind === "text") return splitIntoWindows(tokenizer.encode(sample(name).slice(0, Number(count))), context);
  if (kind === "tokens") return [tokenizer.encode(sample(name)).slice(0, Number(count))];
  throw new Error(`early-model runs=${spec}: not samples:N, text:NAME:CHARS or tokens:NAME:COUNT`);
}

/**
 * ```early-model [visible=COPY] [prefetch] [runs=SPEC]: hidden links to the model worker,
 * onnxruntime's runtimes and the first checkpoint (`prefetch`: the others
 * too), which Framework rewrites to the built files' hashed names, then
 * tools/inline/early-model.js inlined, which starts the worker on them while
 * the page is still parsing: at once, or when the build's copy named by
 * `visible` comes into view (the fence goes after that copy). `runs`: the
 * page's first sequences (firstSequences), which the worker routes with
 * every linked checkpoint before the page asks (the lab's own forward pass
 * then answers the page's request from what it routed).
 */
function earlyModel(options: Map<string, string | true>): string {
  const { checkpoints } = JSON.parse(readFileSync(`${root}src/lib/model/olmoe-mini.json`, "utf8")) as {
    checkpoints: string[];
  };
  // The graph each checkpoint is routed with, as src/assets/model-files.js lists them: router-only where there is one.
  const models = checkpoints
    .map((c) => [`models/${c}.router.onnx`, `models/${c}.onnx`].find((file) => existsSync(`${root}src/assets/${file}`)))
    .filter((file): file is string => file !== undefined);
  if (!models.length) return "";
  const links: [string, string][] = [
    ["worker", "model-worker.js"],
    ["model", models[0]],
    ...(options.has("prefetch") ? models.slice(1).map((m): [string, string] => ["prefetch", m]) : []),
    ["wasm-mjs", "ort/ort-wasm-simd-threaded.mjs"],
    ["wasm", "ort/ort-wasm-simd-threaded.wasm"],
    ["webgpu-mjs", "ort/ort-wasm-simd-threaded.asyncify.mjs"],
    ["webgpu-wasm", "ort/ort-wasm-simd-threaded.asyncify.wasm"],
  ];
  const anchors = links
    .map(([name, file]) => `<a hidden download data-early-model="${name}" href="./assets/${file}"></a>`)
    .join("");
  const visible = options.get("visible");
  const when = typeof visible === "string" ? ` data-visible="${escapeHtml(visible)}"` : "";
  const runs = options.get("runs");
  const sequences = typeof runs === "string" ? ` data-runs="${JSON.stringify(firstSequences(runs))}"` : "";
  return `<div hidden${when}${sequences}>${anchors}</div>\n<script>${readFileSync(`${root}tools/inline/early-model.js`, "utf8")}</script>\n`;
}

/** `name key=value flag` → name and a map of the rest. */
function fenceOptions(info: string): [string, Map<string, string | true>] {
  const [name, ...rest] = info.trim().split(/\s+/);
  return [
    name,
    new Map(
      rest.map((part): [string, string | true] => {
        const eq = part.indexOf("=");
        return eq < 0 ? [part, true] : [part.slice(0, eq), part.slice(eq + 1)];
      }),
    ),
  ];
}

export function earlyModelPlugin(md: MarkdownIt): MarkdownIt {
  const fence = md.renderer.rules.fence!;
  md.renderer.rules.fence = (tokens, idx, ...rest) => {
    const [kind, options] = fenceOptions(tokens[idx].info);
    return kind === "early-model" ? earlyModel(options) : fence(tokens, idx, ...rest);
  };
  return md;
}
