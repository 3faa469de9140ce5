// Inlined into the playground's HTML by tools/build-copy-plugin.ts (an
// ```early-model fence): a classic script, so it runs while the page is still
// being parsed, before any of the page's modules has arrived. It starts the
// model worker and asks it to open the default checkpoint: onnxruntime's wasm
// compiles and the checkpoint downloads while the page's modules load, and
// the page's ModelClient adopts this worker (pageModelClient,
// src/components/model-client.ts) instead of starting its own. The URLs come
// from hidden links that Framework rewrote to the built files' hashed names.
// Any failure here only means the page starts the worker itself, as before.
(() => {
  const href = (name) => document.querySelector(`a[data-early-model="${name}"]`)?.href;
  const workerUrl = href("worker");
  const modelUrl = href("model");
  if (!workerUrl || !modelUrl || typeof Worker !== "function") return;
  // The reader's choice in the address, as src/components/backend-preference.ts reads it.
  const ep = new URLSearchParams(location.search).get("ep");
  const early = { url: workerUrl, worker: null, failed: false };
  try {
    early.worker = new Worker(workerUrl, { type: "module" });
    early.worker.onerror = () => (early.failed = true);
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
    window.__olmoeEarlyWorker = early;
  } catch {
    // no worker: the page starts one itself
  }
})();
