// Types for the two functions of Framework's markdown parser that
// test/static-tex.test.ts calls (Framework ships no declarations for them).
declare module "@observablehq/framework/dist/markdown.js" {
  import type MarkdownIt from "markdown-it";
  export function createMarkdownIt(options?: { markdownIt?: (md: MarkdownIt) => MarkdownIt }): MarkdownIt;
  export function parseMarkdown(
    input: string,
    options: { md: MarkdownIt; path: string },
  ): { body: string; code: unknown[] };
}
