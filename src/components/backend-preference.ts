import type { Backend, BackendPreference } from "../workers/model-protocol.js";

/**
 * The runtime the reader asked for in the address: `?ep=wasm` or `?ep=webgpu`
 * (which accepts a software adapter); anything else lets the worker choose.
 */
export function backendPreference(search = location.search): BackendPreference {
  const ep = new URLSearchParams(search).get("ep");
  return ep === "wasm" || ep === "webgpu" ? ep : "auto";
}

/** A backend as the pages name it: "JavaScript" is the lab's own forward pass of a router-only graph. */
export function backendName(backend: Backend | string | undefined): string {
  return backend === "webgpu"
    ? "WebGPU"
    : backend === "wasm"
      ? "WASM"
      : backend === "js"
        ? "JavaScript"
        : String(backend);
}
