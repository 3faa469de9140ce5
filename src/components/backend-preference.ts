import type { BackendPreference } from "../workers/model-protocol.js";

/**
 * The runtime the reader asked for in the address: `?ep=wasm` or `?ep=webgpu`
 * (which accepts a software adapter); anything else lets the worker choose.
 */
export function backendPreference(search = location.search): BackendPreference {
  const ep = new URLSearchParams(search).get("ep");
  return ep === "wasm" || ep === "webgpu" ? ep : "auto";
}
