import assert from "node:assert/strict";
import { after } from "node:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import type { RouterLogits } from "../src/lib/types.js";

/**
 * A scratch folder in the system's temporary folder, removed after the tests
 * of the file (or of the test) that made it: every run of the suite would
 * otherwise leave its files behind.
 */
export function scratchDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** |a − b| ≤ rel · max(|a|, |b|, floor). */
export function assertClose(actual: number, expected: number, relative: number, label = "", floor = 1e-12): void {
  const scale = Math.max(Math.abs(actual), Math.abs(expected), floor);
  assert.ok(
    Math.abs(actual - expected) <= relative * scale,
    `${label}: ${actual} vs expected ${expected} (relative tolerance ${relative})`,
  );
}

/** Random router logits with a random shape, as float64, plus a layout. */
export const arbitraryBatch = (
  options: { maxLayers?: number; maxTokens?: number; maxExperts?: number; maxSequences?: number } = {},
) =>
  fc
    .record({
      layers: fc.integer({ min: 1, max: options.maxLayers ?? 3 }),
      experts: fc.integer({ min: 2, max: options.maxExperts ?? 12 }),
      sequenceLengths: fc.array(fc.integer({ min: 1, max: options.maxTokens ?? 8 }), {
        minLength: 1,
        maxLength: options.maxSequences ?? 5,
      }),
      seed: fc.integer(),
      scale: fc.double({ min: 0.1, max: 4, noNaN: true }),
    })
    .chain((base) =>
      fc.record({
        base: fc.constant(base),
        topK: fc.integer({ min: 1, max: base.experts }),
        microBatch: fc.integer({ min: 1, max: base.sequenceLengths.length }),
      }),
    )
    .map(({ base, topK, microBatch }) => {
      const tokens = base.sequenceLengths.reduce((a, b) => a + b, 0);
      const data = new Float64Array(base.layers * tokens * base.experts);
      let state = base.seed >>> 0 || 0x9e3779b9; // xorshift must not start at 0
      for (let i = 0; i < data.length; i++) {
        // xorshift: cheap reproducible noise, continuous values (ties have probability ~0)
        state ^= state << 13;
        state >>>= 0;
        state ^= state >>> 17;
        state ^= state << 5;
        state >>>= 0;
        data[i] = ((state / 4294967296) * 2 - 1) * base.scale;
      }
      const logits: RouterLogits = { data, layers: base.layers, tokens, experts: base.experts };
      return { logits, topK, sequenceLengths: base.sequenceLengths, microBatch };
    });
