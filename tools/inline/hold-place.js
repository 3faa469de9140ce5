// Inlined into every page's <head> by observablehq.config.ts: a classic script that holds the
// reader's place while the page draws.
//
// A page's cells draw after its modules load, most of them growing from a one-line placeholder
// to a figure, so everything above the reader's place grows by thousands of pixels in the first
// seconds. Chromium's scroll anchoring should keep the place, but it anchors on the first element
// in view, which on these pages is often a placeholder still loading (it grows from its own top
// and pushes everything below it, unanchored) or a build-time copy that its live cell replaces
// (the anchor is gone in the very frame the page above grew). A link to a section's heading
// landed with the heading 200–1090 px down the screen, or off it, on 15 of the lab's 36 section
// headings, and a reader who scrolled to the ablation's side-by-side before the page drew saw it
// pushed to the screen's bottom edge in 13 of 20 visits.
//
// So this script chooses the anchor:
// - the element the address points to (#heading, on load and on every hashchange), held where
//   the browser scrolls it (below the page's scroll-padding-top);
// - after the reader scrolls, the first block of the page on screen that is not still loading,
//   on screen as the page stood when this script last looked (after its last correction), and
//   held where the reader saw it there. This script learns of a scroll only in the next frame,
//   and by then a figure above may have grown (a busy page draws a cell in the task after the
//   scroll, and a scroll of Chromium's own anchoring is reported a frame late, beside the next
//   growth). Judged by the page as it then was, the place was lost: the ablation's side-by-side
//   was pushed 3002 px down, off the screen (so its live run never started), in 4 of 10 and 2
//   of 8 visits;
// - a build-time copy replaced by its live cell hands its place to that cell (the
//   "moe-lab:replace" event, replaceBuildCopy in src/components/build-time.ts).
// Chromium's anchoring may then choose only inside the held block (every other block of the page
// is `overflow-anchor: none`): it corrects at every layout, including those run by other
// ResizeObservers' callbacks (Framework redraws a figure on a change of width in one). Where it
// has nothing to anchor on (the frame in which a copy is replaced), a ResizeObserver on the page
// scrolls back by however far the held element moved: it reports after layout, before paint.
(() => {
  if (typeof ResizeObserver !== "function") return; // Chromium's own anchoring, unchanged
  const MARK = "data-reader-place";
  /** The element held in place, and its distance from the top of the screen (px). */
  let held = null;
  let heldTop = 0;
  /** Where this script's own last correction left the page: its scroll is not the reader's, even where the page was too short to go all the way. */
  let ownScroll = NaN;
  /** The held element when it is the address's #target. */
  let fragment = null;
  /** How far the held element was from its place after the last correction or scroll (not 0 where the page was too short). */
  let lastOffset = 0;
  let checking = false;
  /** Each block's place in the page (px from its top) when this script last looked: where the reader saw it. */
  let places = new WeakMap();

  const main = () => document.getElementById("observablehq-main");
  const loading = (block) => block.localName === "observablehq-loading" || block.querySelector("observablehq-loading");
  /** The page's block (a child of main) that holds an element. */
  const blockOf = (element) => {
    while (element?.parentElement && element.parentElement.id !== "observablehq-main") element = element.parentElement;
    return element?.parentElement ? element : null;
  };

  function hold(element, top, link = false) {
    fragment = link ? element : null;
    const block = blockOf(element);
    for (const marked of document.querySelectorAll(`[${MARK}]`)) if (marked !== block) marked.removeAttribute(MARK);
    block?.setAttribute(MARK, "");
    held = element;
    heldTop = top;
    lastOffset = offset();
  }

  /** Notes where the held element and each block of the page are, after a layout this script has seen (and corrected). */
  function record() {
    lastOffset = offset();
    places = new WeakMap();
    for (const block of main()?.children ?? []) {
      const { top, bottom } = block.getBoundingClientRect();
      places.set(block, { top: top + scrollY, bottom: bottom + scrollY });
    }
  }

  /** Where the reader saw a block on the screen: at its place when this script last looked, else where it is now. */
  function seenBox(block) {
    const place = places.get(block);
    return place ? { top: place.top - scrollY, bottom: place.bottom - scrollY } : block.getBoundingClientRect();
  }

  /**
   * The block the reader is looking at, held where the reader saw it: Chromium's choice, the first
   * on screen, but not a placeholder that will grow. On screen as the page was when this script
   * last looked: a block above that has grown since (into the screen) is not what the reader saw.
   */
  function pick() {
    let placeholder = null;
    for (const block of main()?.children ?? []) {
      const box = seenBox(block);
      if (box.bottom - box.top === 0 || box.bottom <= 0 || box.top >= innerHeight) continue;
      if (!loading(block)) return hold(block, box.top);
      placeholder ??= block;
    }
    if (placeholder) hold(placeholder, seenBox(placeholder).top);
  }

  /** The element the address points to, held where the browser scrolls it. */
  function holdFragment() {
    let id = "";
    try {
      id = decodeURIComponent(location.hash.slice(1));
    } catch {
      return;
    }
    const element = id && document.getElementById(id);
    if (element && blockOf(element)) hold(element, 0, true);
  }

  /** Where the browser puts a link's target: the page's scroll-padding-top (Framework's layout.css) and its scroll-margin-top. */
  const linkTop = (element) =>
    (parseFloat(getComputedStyle(document.documentElement).scrollPaddingTop) || 0) +
    (parseFloat(getComputedStyle(element).scrollMarginTop) || 0);

  /** How far the held element is from where it is held (NaN: it is gone). Read each time for a link's target, whose place comes from style sheets that may still be loading. */
  function offset() {
    if (!held?.isConnected) return NaN;
    if (held === fragment) heldTop = linkTop(held);
    return held.getBoundingClientRect().top - heldTop;
  }

  /** After a layout: scroll back by however far the held element moved (a block held in place of one that is gone, too). */
  function correct() {
    let moved = offset();
    if (Number.isNaN(moved)) {
      pick();
      moved = offset();
    }
    if (Math.abs(moved) >= 1) {
      scrollBy({ top: moved, behavior: "instant" });
      ownScroll = scrollY;
    }
    record();
  }

  /**
   * After a scroll: one that moved the held element was the reader's (or a link's), so hold
   * what is in view now. Except for a scroll that brings a link's target nearer its place:
   * Chromium scrolls to the target again as the page grows while it loads, each time as far
   * as the page then reaches.
   */
  function check() {
    checking = false;
    const moved = offset();
    const stayed = Math.abs(moved - lastOffset) < 1; // Chromium's anchoring, or a page too short to correct further
    // A link's target further down than its place while the page cannot scroll further (it grows and shrinks as it draws).
    const short = held === fragment && moved > 0 && scrollY >= document.documentElement.scrollHeight - innerHeight - 1;
    const nearer = held === fragment && Math.abs(moved) < Math.abs(lastOffset);
    const own = Math.abs(scrollY - ownScroll) < 1;
    ownScroll = NaN;
    if (!own && !stayed && !nearer && !short) {
      pick();
      correct(); // where the page above grew since the reader saw it
    } else record();
  }

  function start() {
    const page = main();
    if (!page) return;
    const style = document.createElement("style");
    style.textContent = `#observablehq-main > :not([${MARK}]) { overflow-anchor: none; }`;
    document.head.append(style);
    if (location.hash) holdFragment();
    else pick();
    record();
    new ResizeObserver(correct).observe(page);
    addEventListener(
      "scroll",
      () => {
        if (checking) return;
        checking = true;
        requestAnimationFrame(check);
      },
      { passive: true },
    );
    addEventListener("hashchange", () => requestAnimationFrame(holdFragment));
    addEventListener("moe-lab:replace", (event) => {
      const { copy, replacement } = event.detail ?? {};
      if (copy && copy === held && replacement?.isConnected) hold(replacement, heldTop);
    });
  }

  // Once the page is parsed, before its modules run: its cells draw only after that.
  if (document.readyState !== "loading") start();
  else
    document.addEventListener("readystatechange", function ready() {
      document.removeEventListener("readystatechange", ready);
      start();
    });
})();
