// KaTeX rendered from node_modules (Framework's ```tex blocks fetch KaTeX from
// a CDN, which offline builds cannot reach). Use as a tagged template:
//   ${tex`E \sum_e f_e P_e`}  inline, or  ${tex.block`...`}  display style.
// A formula whose source interpolates nothing is typeset when the site is built
// (tools/static-tex-plugin.ts) and never calls this: a page whose formulas are
// all literal does not import this module, and so loads no KaTeX (267 KB of
// JavaScript to download and compile before its cells run).
import katex from "katex";

function render(displayMode: boolean, strings: TemplateStringsArray | string, values: unknown[]): HTMLElement {
  const source = typeof strings === "string" ? strings : String.raw({ raw: strings.raw }, ...values);
  const element = document.createElement(displayMode ? "div" : "span");
  element.className = displayMode ? "tex tex-block" : "tex";
  // throwOnError: a typo in a formula must show up in tests as .katex-error, not silently
  katex.render(source, element, { displayMode, throwOnError: false, output: "html" });
  return element;
}

export function tex(strings: TemplateStringsArray | string, ...values: unknown[]): HTMLElement {
  return render(false, strings, values);
}

tex.block = (strings: TemplateStringsArray | string, ...values: unknown[]): HTMLElement =>
  render(true, strings, values);
