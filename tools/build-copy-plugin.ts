// A markdown-it plugin for Framework (observablehq.config.ts): a fence
//
//   ```build-copy real-z
//   ```
//
// becomes the HTML that tools/build-copies.ts renders under that name: a
// table of OLMoE-mini's numbers computed with onnxruntime-node when the site
// is built. It is part of the page's HTML, so it paints before any module,
// data file or the model has loaded; the page's cell, which draws the same
// table with the same renderer, removes it when it displays its own
// (src/components/build-time.ts, replaceBuildCopy).
//
// The numbers are computed once per process and again only when an input
// changes (the models, tokenizer, samples, or the code that routes and
// renders them), so the dev server re-renders an edited page at once.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type MarkdownIt from "markdown-it";

const root = fileURLToPath(new URL("../", import.meta.url));
const inputs = ["data/models", "data/samples", "data/tokenizer.json", "tools", "src/lib", "src/components"];

/** The newest modification time under `path` (0 where it does not exist). */
function newest(path: string): number {
  let stat;
  try {
    stat = statSync(path);
  } catch {
    return 0;
  }
  if (!stat.isDirectory()) return stat.mtimeMs;
  return readdirSync(path).reduce((latest, name) => Math.max(latest, newest(`${path}/${name}`)), stat.mtimeMs);
}

let cached: { key: number; copies: Record<string, string>; error: string | null } = {
  key: NaN,
  copies: {},
  error: null,
};

function copies() {
  const key = Math.max(...inputs.map((p) => newest(root + p)));
  if (key !== cached.key) {
    try {
      const json = execFileSync(process.execPath, ["--import", "tsx", "tools/build-copies.ts"], {
        cwd: root,
        encoding: "utf8",
        maxBuffer: 16 << 20,
        stdio: ["ignore", "pipe", "pipe"],
      });
      cached = { key, copies: JSON.parse(json), error: null };
    } catch (caught) {
      const error = caught as { stderr?: string; message: string };
      const message = String(error.stderr || error.message)
        .trim()
        .split("\n")
        .slice(-3)
        .join(" ");
      console.error(`build-copy: tools/build-copies.ts failed: ${message}`);
      cached = { key, copies: {}, error: message };
    }
  }
  return cached;
}

const escape = (text: string) =>
  text.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c] as string);

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
  const when = typeof visible === "string" ? ` data-visible="${escape(visible)}"` : "";
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

export function buildCopyPlugin(md: MarkdownIt): MarkdownIt {
  const fence = md.renderer.rules.fence!;
  md.renderer.rules.fence = (tokens, idx, ...rest) => {
    const [kind, options] = fenceOptions(tokens[idx].info);
    if (kind === "early-model") return earlyModel(options);
    const match = /^build-copy\s+([\w-]+)\s*$/.exec(tokens[idx].info);
    if (!match) return fence(tokens, idx, ...rest);
    const name = match[1];
    const { copies: all, error } = copies();
    // A build without checkpoints has no copy: the page's cell says so itself.
    const body =
      all[name] ??
      (error ? `<p class="warning">The build-time numbers could not be computed: ${escape(error)}</p>` : "");
    return `<div data-build-copy="${escape(name)}">${body}</div>\n`;
  };
  return md;
}
