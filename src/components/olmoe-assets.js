// The files a page needs to run OLMoE-mini: worker, ORT's WASM runtimes,
// tokenizer, samples, and the checkpoints that exist. FileAttachment paths
// are relative to this module.
import { FileAttachment } from "observablehq:stdlib";
import { fullModelFiles, modelFiles } from "../assets/model-files.js";
import { olmoeMini } from "./olmoe-mini.js";

const absolute = (file) => new URL(file.href, location.href).href;
/** `load()` once per page (a failed load is tried again next time): every cell and checkpoint shares the result. */
const once = (load) => {
  let promise = null;
  return () =>
    (promise ??= load().catch((error) => {
      promise = null;
      throw error;
    }));
};

export const olmoeAssets = {
  workerUrl: absolute(FileAttachment("../assets/model-worker.js")),
  wasmPaths: {
    wasm: {
      mjs: absolute(FileAttachment("../assets/ort/ort-wasm-simd-threaded.mjs")),
      wasm: absolute(FileAttachment("../assets/ort/ort-wasm-simd-threaded.wasm")),
    },
    webgpu: {
      mjs: absolute(FileAttachment("../assets/ort/ort-wasm-simd-threaded.asyncify.mjs")),
      wasm: absolute(FileAttachment("../assets/ort/ort-wasm-simd-threaded.asyncify.wasm")),
    },
  },
  // Fetched and parsed once: the z-loss page asks for them once per checkpoint, and the
  // sample windows are tokenised once per tokenizer object (olmoe-samples.ts).
  tokenizer: once(() => FileAttachment("../assets/tokenizer.json").json()),
  samples: once(() => FileAttachment("../assets/samples.json").json()),
  /**
   * Both, asked for at once: on a network each is a round trip before a live run can start. A page
   * may ask early and await later: the promise is marked handled, so a failure is reported where it
   * is awaited, not also as an unhandled rejection in between.
   */
  tokenizerAndSamples: () => {
    const both = Promise.all([olmoeAssets.tokenizer(), olmoeAssets.samples()]);
    both.catch(() => {});
    return both;
  },
  checkpoints: olmoeMini.checkpoints.filter((name) => modelFiles[name]),
  /** The graph the routing views load: router-only where there is one. */
  modelUrl: (name) => absolute(modelFiles[name]),
  /** The full graph: logits for next-token predictions, and the route overrides. */
  fullModelUrl: (name) => absolute(fullModelFiles[name]),
};
