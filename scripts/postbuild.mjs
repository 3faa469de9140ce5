#!/usr/bin/env node
// Runs after every `npm run build`: drops the <link rel="modulepreload">
// tags Framework writes into each page's <head>, one per module of the page's
// import graph (95 on the z-loss page). Chromium fetches and compiles every
// preloaded module while it is still parsing the page, and on two cores that
// work delays the paint of the numbers the build wrote into the HTML
// (```build-copy fences): the z-loss table painted 0.65-1.13 s after
// navigation with the preloads and 0.43-0.46 s without, while the live
// numbers, which need the modules, came no later (6.2-7.1 s without, 6.5-7.6 s
// with; headless Chromium, a cold cache, 4 interleaved visits each). The
// browser still fetches the same modules, level by level as it reads their
// imports. The dev server is untouched.
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const dist = fileURLToPath(new URL("../dist/", import.meta.url));
const preload = /^[ \t]*<link rel="modulepreload"[^>]*>\r?\n?/gm;

let pages = 0;
let links = 0;
for (const entry of readdirSync(dist, { recursive: true })) {
  const file = join(dist, String(entry));
  if (!file.endsWith(".html")) continue;
  const html = readFileSync(file, "utf8");
  const stripped = html.replace(preload, () => (links++, ""));
  if (stripped !== html) {
    writeFileSync(file, stripped);
    pages++;
  }
}
console.log(`postbuild: ${links} modulepreload links dropped from ${pages} pages`);
