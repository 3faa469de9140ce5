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
import { readdirSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type MarkdownIt from "markdown-it";
import { escapeHtml } from "../src/components/real-tables.js";

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

export function buildCopyPlugin(md: MarkdownIt): MarkdownIt {
  const fence = md.renderer.rules.fence!;
  md.renderer.rules.fence = (tokens, idx, ...rest) => {
    const match = /^build-copy\s+([\w-]+)\s*$/.exec(tokens[idx].info);
    if (!match) return fence(tokens, idx, ...rest);
    const name = match[1];
    const { copies: all, error } = copies();
    // A build without checkpoints has no copy: the page's cell says so itself.
    const body =
      all[name] ??
      (error ? `<p class="warning">The build-time numbers could not be computed: ${escapeHtml(error)}</p>` : "");
    return `<div data-build-copy="${escapeHtml(name)}">${body}</div>\n`;
  };
  return md;
}
