/**
 * Build-time first paint, then live: the sample batches' summaries that
 * `src/data/sample-batches.json.ts` computed with onnxruntime-node when the
 * site was built, turned back into what the pages' live run produces, and a
 * promise that waits until a section scrolls into view (the live run starts then).
 */
import type { RoutingSummary } from "../lib/summary.js";

/** A summary as the data loader wrote it (plain arrays). */
export interface SummaryJson {
  layers: number;
  experts: number;
  topK: number;
  tokens: number;
  sequenceLengths: number[];
  probSum: number[];
  load: number[];
  logSumExpSquareSum: number[];
  maxLogit: number;
}

export function summaryOfJson(json: SummaryJson): RoutingSummary {
  return {
    ...json,
    sequenceLengths: [...json.sequenceLengths],
    probSum: Float64Array.from(json.probSum),
    load: Float64Array.from(json.load),
    logSumExpSquareSum: Float64Array.from(json.logSumExpSquareSum),
  };
}

/**
 * Resolves once a section is (about to be) on screen: once some part of it,
 * from the top of `start` to the bottom of `end` (elements that open and close
 * it; `end` defaults to `start`), lies within `margin` px of the viewport. A
 * section taller than the screen counts while the reader is in its middle,
 * where neither end shows: an IntersectionObserver on the ends alone never
 * fires there (the ablation's side-by-side is 924 px tall; with its top 210 px
 * above the screen and its bottom on it, its live run never started). Checked
 * when either end crosses into or out of the margin, and on every scroll and
 * resize. At once where IntersectionObserver is missing.
 */
export function inView(start: Element, end: Element = start, margin = 200): Promise<void> {
  if (typeof IntersectionObserver === "undefined") return Promise.resolve();
  return new Promise((resolve) => {
    const check = () => {
      const top = start.getBoundingClientRect().top;
      const bottom = end.getBoundingClientRect().bottom;
      if (!start.isConnected || !end.isConnected || top >= innerHeight + margin || bottom <= -margin) return;
      observer.disconnect();
      removeEventListener("scroll", check);
      removeEventListener("resize", check);
      resolve();
    };
    // Its first report, at once, checks where the section is now.
    const observer = new IntersectionObserver(check, { rootMargin: `${margin}px` });
    observer.observe(start);
    if (end !== start) observer.observe(end);
    addEventListener("scroll", check, { passive: true });
    addEventListener("resize", check, { passive: true });
  });
}

/** A fragment parsed from HTML that the lab's own renderers wrote (src/components/real-tables.ts). */
export function fromHtml(markup: string): DocumentFragment {
  const template = document.createElement("template");
  template.innerHTML = markup;
  return template.content;
}

/**
 * Removes the copy of a table that the build wrote into the page (a
 * ```build-copy NAME fence, tools/build-copy-plugin.ts): the cell that calls
 * this has displayed the same table, or its live successor, itself. The fence
 * follows that cell, so the cell's block is the copy's previous sibling, and a
 * reader looking at the copy is held looking at it instead
 * (tools/inline/hold-place.js).
 */
export function replaceBuildCopy(name: string): void {
  const copy = document.querySelector(`[data-build-copy="${name}"]`);
  if (!copy) return;
  dispatchEvent(new CustomEvent("moe-lab:replace", { detail: { copy, replacement: copy.previousElementSibling } }));
  copy.remove();
}

/** The side-by-side cards that the build wrote into the page, by checkpoint, and the sample and layer they show. */
export interface BuiltCards {
  sample: string;
  layer: number;
  cards: Map<string, Element>;
}

/**
 * Reads the cards of a build-time copy (`data-checkpoint` on each) without
 * removing it: the cell that shows them calls `replaceBuildCopy` once it has
 * displayed its own. Null where the build wrote none.
 */
export function builtCards(name: string): BuiltCards | null {
  const grid = document.querySelector(`[data-build-copy="${name}"] [data-sample]`) as HTMLElement | null;
  if (!grid) return null;
  const cards = new Map(
    [...grid.querySelectorAll("[data-checkpoint]")].map((card) => [card.getAttribute("data-checkpoint") ?? "", card]),
  );
  return { sample: grid.dataset.sample ?? "", layer: Number(grid.dataset.layer), cards };
}
