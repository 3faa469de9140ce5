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

/** Resolves once `element` is (about to be) on screen; at once where IntersectionObserver is missing. */
export function inView(element: Element, margin = "200px"): Promise<void> {
  if (typeof IntersectionObserver === "undefined") return Promise.resolve();
  return new Promise((resolve) => {
    const observer = new IntersectionObserver(
      (entries) => {
        if (entries.some((e) => e.isIntersecting)) {
          observer.disconnect();
          resolve();
        }
      },
      { rootMargin: margin },
    );
    observer.observe(element);
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
 * this is about to display the same table, or its live successor, itself.
 */
export function replaceBuildCopy(name: string): void {
  document.querySelector(`[data-build-copy="${name}"]`)?.remove();
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
