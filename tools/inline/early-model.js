// Inlined into a page's HTML by tools/early-model-plugin.ts (an ```early-model
// fence): a classic script, so it runs while the page is still being parsed,
// before any of the page's modules has arrived. It starts the model worker
// and asks it to open the first checkpoint (and to download the others the
// page routes): the checkpoints download and open while the page's modules
// load. The page's ModelClient adopts this worker (pageModelClient,
// src/components/model-client.ts) instead of starting its own. The worker
// starts at once on every page; the playground asks it for its checkpoint at
// once, and a page whose live run waits for its section asks when the build's
// copy of that section comes into view. The URLs come from the hidden links
// just before this script, which Framework rewrote to the built files' hashed
// names. Any failure here only means that the page starts the worker itself,
// as it would without this script.
(() => {
  const links = document.currentScript?.previousElementSibling;
  if (!links || typeof Worker !== "function") return;
  const href = (name) => links.querySelector(`a[data-early-model="${name}"]`)?.href;
  const workerUrl = href("worker");
  const modelUrl = href("model");
  if (!workerUrl || !modelUrl) return;
  const prefetch = [...links.querySelectorAll('a[data-early-model="prefetch"]')].map((a) => a.href);
  // The reader's choice in the address, as src/components/backend-preference.ts reads it.
  const ep = new URLSearchParams(location.search).get("ep");
  // The page got there first (it started its own worker): one worker per page.
  if (window.__olmoeEarlyWorker || window.__olmoePageWorker) return;
  const early = { url: workerUrl, worker: null, failed: false };
  try {
    // Started at once, even where the section it serves is further down: fetching and
    // compiling the worker's script (216 KB, the same file on every page, so cached after
    // the first) is then done when the section comes into view, and the checkpoints'
    // downloads start at that moment instead of ~0.6 s later (z-loss, on two cores).
    early.worker = new Worker(workerUrl, { type: "module" });
    early.worker.onerror = () => (early.failed = true);
    window.__olmoeEarlyWorker = early;
  } catch {
    return; // no worker: the page starts one itself
  }
  // Asked once: the page may have adopted the worker by then (its answers to id 0 are nobody's).
  const start = () => {
    try {
      early.worker.postMessage({
        type: "load",
        id: 0, // the page's requests count from 1: the answer to this one is nobody's
        modelUrl,
        backend: ep === "wasm" || ep === "webgpu" ? ep : "auto",
        wasmPaths: {
          wasm: { mjs: href("wasm-mjs"), wasm: href("wasm") },
          webgpu: { mjs: href("webgpu-mjs"), wasm: href("webgpu-wasm") },
        },
      });
      for (const url of prefetch) early.worker.postMessage({ type: "prefetch", id: 0, modelUrl: url });
    } catch {
      // a worker that failed: the page replaces it, and reports why
    }
  };
  const section = links.dataset.visible && document.querySelector(`[data-build-copy="${links.dataset.visible}"]`);
  if (!links.dataset.visible) start();
  else if (section && typeof IntersectionObserver === "function")
    // The same margin as the page's own wait for the section (inView, src/components/build-time.ts).
    new IntersectionObserver(
      (entries, observer) => {
        if (!entries.some((e) => e.isIntersecting)) return;
        observer.disconnect();
        start();
      },
      { rootMargin: "200px" },
    ).observe(section);
})();
