#!/usr/bin/env node
// Prettier for the code of the pages: every ```js cell of src/*.md is
// formatted as its own program (Prettier's Markdown mode would also rewrite
// the prose and its ${…} expressions, which it cannot parse), with the
// project's .prettierrc and no semicolons: Framework displays a cell that is
// a single expression, and `expr;` is a statement, so a semicolon would hide it.
//   node scripts/format-pages.mjs          rewrites the pages
//   node scripts/format-pages.mjs --check  lists the pages that differ, exit 1
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import * as prettier from "prettier";

const check = process.argv.includes("--check");
const pagesDir = new URL("../src/", import.meta.url);
const config = {
  ...(await prettier.resolveConfig(new URL("../.prettierrc", import.meta.url).pathname)),
  parser: "babel",
  semi: false,
};

/** The page with each ```js cell formatted. */
async function formatPage(text, name) {
  const lines = text.split("\n");
  const out = [];
  for (let i = 0; i < lines.length; i++) {
    out.push(lines[i]);
    if (lines[i] !== "```js") continue;
    const end = lines.indexOf("```", i + 1);
    if (end < 0) throw new Error(`${name}:${i + 1}: a \`\`\`js cell is never closed`);
    const source = lines.slice(i + 1, end).join("\n");
    let formatted;
    try {
      formatted = await prettier.format(source, config);
    } catch (error) {
      throw new Error(`${name}:${i + 2}: ${error.message.split("\n")[0]}`);
    }
    out.push(...formatted.replace(/\n$/, "").split("\n"));
    i = end - 1;
  }
  return out.join("\n");
}

const differ = [];
for (const file of readdirSync(pagesDir)
  .filter((f) => f.endsWith(".md"))
  .sort()) {
  const url = new URL(file, pagesDir);
  const text = readFileSync(url, "utf8");
  const formatted = await formatPage(text, `src/${file}`);
  if (formatted === text) continue;
  differ.push(`src/${file}`);
  if (!check) writeFileSync(url, formatted);
}
if (check && differ.length) {
  console.error(`page cells not formatted (run npm run format): ${differ.join(", ")}`);
  process.exit(1);
}
if (!check) console.log(differ.length ? `formatted ${differ.join(", ")}` : "pages already formatted");
