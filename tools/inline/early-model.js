// Inlined into a page's HTML by tools/early-model-plugin.ts (an ```early-model
// fence): a classic script, so it runs while the page is still being parsed,
// before any of the page's modules has arrived. It starts the model worker
// and asks it to open the first checkpoint (and to download the others the
// page routes): the checkpoints download while the page's modules load. With
// the page's first sequences (`data-runs`, computed at build from the same
// tokenizer and texts as the page's cells) it also asks every checkpoint to
// route them, so that the lab's own forward pass has them when the page asks
// (it answers from what it routed: src/workers/model-worker.ts, RoutedSequences);
// with ?ep=wasm or ?ep=webgpu onnxruntime-web runs the page, which reuses
// nothing, so nothing is routed ahead. The page's ModelClient adopts this worker
// (pageModelClient, src/components/model-client.ts) instead of starting its
// own. The playground starts at once; a page whose live run waits for its
// section starts when the build's copy of that section comes into view. The
// URLs come from the hidden links just before this script, which Framework
// rewrote to the built files' hashed names. Any failure here only means that
// the page starts the worker itself, as it would without this script.
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
  const start = () => {
    // The page got there first (it started its own worker): one worker per page.
    if (window.__olmoeEarlyWorker || window.__olmoePageWorker) return;
    const early = { url: workerUrl, worker: null, failed: false };
    try {
      early.worker = new Worker(workerUrl, { type: "module" });
      early.worker.onerror = () => (early.failed = true);
      const load = {
        type: "load",
        id: 0, // the page's requests count from 1: the answers to these are nobody's
        modelUrl,
        backend: ep === "wasm" || ep === "webgpu" ? ep : "auto",
        wasmPaths: {
          wasm: { mjs: href("wasm-mjs"), wasm: href("wasm") },
          webgpu: { mjs: href("webgpu-mjs"), wasm: href("webgpu-wasm") },
        },
      };
      early.worker.postMessage(load);
      for (const url of prefetch) early.worker.postMessage({ type: "prefetch", id: 0, modelUrl: url });
      const sequences = JSON.parse(links.dataset.runs || "[]");
      if (sequences.length && ep !== "wasm" && ep !== "webgpu")
        for (const [i, url] of [modelUrl, ...prefetch].entries()) {
          if (i > 0) early.worker.postMessage({ ...load, modelUrl: url });
          for (const ids of sequences)
            early.worker.postMessage({
              type: "run",
              id: 0,
              modelUrl: url,
              batch: 1,
              seq: ids.length,
              inputIds: Int32Array.from(ids),
            });
        }
      window.__olmoeEarlyWorker = early;
    } catch {
      // no worker: the page starts one itself
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
