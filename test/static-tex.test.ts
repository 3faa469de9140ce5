// Formulas typeset at build time (tools/static-tex-plugin.ts), through
// Framework's own markdown pipeline: a literal ${tex`…`} becomes KaTeX's HTML
// in the page and no cell, a formula that interpolates a value stays a cell,
// and the HTML is what src/components/tex.ts renders in the browser.
import { test } from "node:test";
import assert from "node:assert/strict";
import katex from "katex";
// Framework's parser, as `observable build` runs it (no package export names it).
import { createMarkdownIt, parseMarkdown } from "@observablehq/framework/dist/markdown.js";
import { staticTexPlugin } from "../tools/static-tex-plugin.js";

const md = createMarkdownIt({ markdownIt: staticTexPlugin });
const parse = (source: string) => parseMarkdown(source, { md, path: "/test.md" });

test("a literal formula is typeset into the HTML, with KaTeX's options of the browser's tex", () => {
  const { body, code } = parse("The loss ${tex`E \\sum_e f_e P_e`} and\n\n${tex.block`\\frac{1}{L}`}\n");
  assert.equal(code.length, 0, "no cell for a literal formula");
  const inline = katex.renderToString("E \\sum_e f_e P_e", { displayMode: false, throwOnError: false, output: "html" });
  const block = katex.renderToString("\\frac{1}{L}", { displayMode: true, throwOnError: false, output: "html" });
  assert.ok(body.includes(`<span class="tex">${inline}</span>`), body);
  assert.ok(body.includes(`<span class="tex tex-block">${block}</span>`), body);
  assert.ok(!body.includes("observablehq-loading"), body);
});

test("a formula that interpolates a value, or any other expression, stays a cell", () => {
  const { body, code } = parse("With ${tex`k = ${k}`} of ${experts} experts, ${tex `x`}.\n");
  assert.equal(code.length, 3, body);
  assert.ok(!body.includes("katex"), body);
});

test("a typo in a formula shows as KaTeX's error in the page, not as a failed build", () => {
  const { body } = parse("${tex`\\frac{1`}\n");
  assert.match(body, /katex-error/);
});

test("a formula in a table cell is typeset; one in code is left as written", () => {
  const { body } = parse("| a | b |\n|---|---|\n| ${tex`\\beta`} | 1 |\n\n`` ${tex`\\beta`} ``\n");
  assert.equal(body.split('class="katex"').length - 1, 1, body);
  assert.match(body, /<code>\$\{tex`\\beta`\}<\/code>/);
});
