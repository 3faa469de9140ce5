// A markdown-it plugin for Framework (observablehq.config.ts): a fence
//
//   ```early-model visible=real-z prefetch
//   ```
//
// starts OLMoE-mini from the page's HTML, before any of its modules (see
// tools/inline/early-model.js, which it inlines).
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type MarkdownIt from "markdown-it";
import { escapeHtml } from "../src/components/real-tables.js";

const root = fileURLToPath(new URL("../", import.meta.url));

/**
 * ```early-model [visible=COPY] [prefetch]: hidden links to the model worker,
 * onnxruntime's runtimes and the first checkpoint (`prefetch`: the others
 * too), which Framework rewrites to the built files' hashed names, then
 * tools/inline/early-model.js inlined, which starts the worker on them while
 * the page is still parsing: at once, or when the build's copy named by
 * `visible` comes into view (the fence goes after that copy).
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
  return `<div hidden${when}>${anchors}</div>\n<script>${readFileSync(`${root}tools/inline/early-model.js`, "utf8")}</script>\n`;
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
