/**
 * Training frameworks' balancing conventions: what each adds to its loss, at
 * what per-layer strength, and the equivalent setting in every other one.
 */
export * from "./catalog.js";
export * from "./simulate.js";
export * from "./effective.js";
