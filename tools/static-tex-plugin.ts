// A markdown-it plugin for Framework (observablehq.config.ts): a formula
// written as ${tex`…`} or ${tex.block`…`} (src/components/tex.ts) whose
// source interpolates nothing is typeset here, at build time, with the same
// KaTeX and options, and written into the page's HTML. The formulas are then
// on screen with the first paint (around the build-time numbers, instead of
// a loading spinner each), and the page runs no cell for them. A formula that
// interpolates a value, ${tex`k = ${k}`}, stays a cell: it follows its inputs.
// The page's source is unchanged: the dev server renders through this plugin too.
import katex from "katex";
import type MarkdownIt from "markdown-it";
import type StateInline from "markdown-it/lib/rules_inline/state_inline.mjs";

const opening = /^\$\{tex(\.block)?`/;

/** At `state.pos`: a ${tex`…`} placeholder with a literal source, as [display mode, source, length], or null. */
function literalTex(src: string, pos: number, max: number): [boolean, string, number] | null {
  const head = opening.exec(src.slice(pos, Math.min(max, pos + 12)));
  if (!head) return null;
  const start = pos + head[0].length;
  const end = src.indexOf("`", start);
  // `}` must close the placeholder right after the template; an escaped backtick or ${…} inside leaves it to Framework.
  if (end < 0 || end + 1 >= max || src[end + 1] !== "}") return null;
  const source = src.slice(start, end);
  if (source.includes("${") || source.endsWith("\\")) return null;
  return [head[1] !== undefined, source, end + 2 - pos];
}

function staticTex(state: StateInline, silent: boolean): boolean {
  if (state.src.charCodeAt(state.pos) !== 0x24 /* $ */) return false;
  const found = literalTex(state.src, state.pos, state.posMax);
  if (!found) return false;
  const [displayMode, source, length] = found;
  if (!silent) {
    const token = state.push("static_tex", "", 0);
    token.content = source;
    token.meta = { displayMode };
  }
  state.pos += length;
  return true;
}

export function staticTexPlugin(md: MarkdownIt): MarkdownIt {
  // Before Framework's own placeholder rule, which would make the formula a cell.
  md.inline.ruler.before("placeholder", "static_tex", staticTex);
  md.renderer.rules.static_tex = (tokens, idx) => {
    const { content, meta } = tokens[idx];
    // As src/components/tex.ts renders it (throwOnError false: a typo shows as .katex-error, which the tests look for);
    // a span either way, so that a display formula may sit inside a paragraph.
    const html = katex.renderToString(content, { displayMode: meta.displayMode, throwOnError: false, output: "html" });
    return `<span class="${meta.displayMode ? "tex tex-block" : "tex"}">${html}</span>`;
  };
  return md;
}
