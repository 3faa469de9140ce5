// Properties every loss must have, over random shapes and logits (fast-check).
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { computeLosses, lossRecord } from "../src/lib/losses/index.js";
import { summarize } from "../src/lib/summary.js";
import type { RouterLogits } from "../src/lib/types.js";
import { arbitraryBatch, assertClose } from "./helpers.js";

const runs = { numRuns: 150 };

/** Logits whose top-k sets tile the experts evenly: token t prefers experts t·k … t·k+k−1 (mod E). */
function balancedLogits(layers: number, rounds: number, experts: number, topK: number, seed: number): RouterLogits {
  // tokens = rounds · E, so every expert is chosen exactly rounds·k times;
  // every expert also receives the same total probability because each token
  // row is a cyclic shift of the same row.
  const tokens = rounds * experts;
  const base = Array.from({ length: experts }, (_, e) =>
    e < topK ? 3 + ((seed + e) % 5) * 0.1 : -((seed + e) % 7) * 0.3,
  );
  const data = new Float64Array(layers * tokens * experts);
  for (let l = 0; l < layers; l++)
    for (let t = 0; t < tokens; t++)
      for (let e = 0; e < experts; e++) {
        data[(l * tokens + t) * experts + ((e + t) % experts)] = base[e];
      }
  return { data, layers, tokens, experts };
}

test("perfectly balanced routing gives lbl.switch = 1 and lbl.hf = k", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 3 }),
      fc.integer({ min: 1, max: 3 }),
      fc.integer({ min: 2, max: 16 }),
      fc.nat(),
      fc.nat(),
      (layers, rounds, experts, k, seed) => {
        const topK = 1 + (k % experts);
        const record = computeLosses(balancedLogits(layers, rounds, experts, topK, seed), topK);
        assertClose(record.lbl.switch, 1, 1e-12, "switch");
        assertClose(record.lbl.hf, topK, 1e-12, "hf");
        assertClose(record.max_vio.global, 0, 1e-12, "max_vio", 1);
        assertClose(record.cv2.load, 0, 1e-12, "cv2.load", 1);
      },
    ),
    runs,
  );
});

test("k = E gives lbl.switch = 1 and max_vio = 0", () => {
  fc.assert(
    fc.property(arbitraryBatch(), ({ logits, sequenceLengths, microBatch }) => {
      const record = computeLosses(logits, logits.experts, sequenceLengths, microBatch);
      assertClose(record.lbl.switch, 1, 1e-12, "switch");
      assertClose(record.lbl.sequence, 1, 1e-12, "sequence");
      assertClose(record.lbl.global, 1, 1e-12, "global");
      assert.equal(record.max_vio.global, 0);
      assert.equal(record.max_vio.micro_batch, 0);
    }),
    runs,
  );
});

test("permuting experts changes no loss", () => {
  fc.assert(
    fc.property(arbitraryBatch(), fc.nat(), ({ logits, topK, sequenceLengths, microBatch }, seed) => {
      const { experts } = logits;
      // a rotation followed by a reversal: a permutation that moves every expert for E > 2
      const permutation = Array.from({ length: experts }, (_, e) => experts - 1 - ((e + seed) % experts));
      const permuted = new Float64Array(logits.data.length);
      for (let row = 0; row < logits.data.length / experts; row++) {
        for (let e = 0; e < experts; e++) permuted[row * experts + permutation[e]] = logits.data[row * experts + e];
      }
      const a = computeLosses(logits, topK, sequenceLengths, microBatch);
      const b = computeLosses({ ...logits, data: permuted }, topK, sequenceLengths, microBatch);
      for (const family of ["lbl", "z_loss", "cv2", "max_vio"] as const) {
        for (const [key, value] of Object.entries(a[family]))
          assertClose((b[family] as Record<string, number>)[key], value, 1e-9, `${family}.${key}`);
      }
      a.load.forEach((row, l) => row.forEach((c, e) => assert.equal(b.load[l][permutation[e]], c)));
    }),
    runs,
  );
});

test("adding a constant to a token's logits changes no LBL and shifts lse by that constant", () => {
  fc.assert(
    fc.property(
      arbitraryBatch(),
      fc.double({ min: -50, max: 50, noNaN: true }),
      fc.nat(),
      ({ logits, topK, sequenceLengths, microBatch }, shift, pick) => {
        const { experts, tokens, layers } = logits;
        const row = pick % (layers * tokens);
        const shifted = Float64Array.from(logits.data);
        for (let e = 0; e < experts; e++) shifted[row * experts + e] += shift;
        const a = computeLosses(logits, topK, sequenceLengths, microBatch);
        const b = computeLosses({ ...logits, data: shifted }, topK, sequenceLengths, microBatch);
        for (const [key, value] of Object.entries(a.lbl))
          assertClose((b.lbl as Record<string, number>)[key], value, 1e-9, `lbl.${key}`);
        assert.deepEqual(b.load, a.load);
        // z_loss.st_moe = (1/(L·T)) Σ lse²: only this row's lse moves, by `shift`
        const sa = summarize(logits, topK, sequenceLengths);
        const lse = (data: Float64Array) => {
          let max = -Infinity,
            sum = 0;
          for (let e = 0; e < experts; e++) max = Math.max(max, data[row * experts + e]);
          for (let e = 0; e < experts; e++) sum += Math.exp(data[row * experts + e] - max);
          return max + Math.log(sum);
        };
        const before = lse(logits.data as Float64Array);
        assertClose(lse(shifted), before + shift, 1e-12, "lse", 1);
        const expectedZ = a.z_loss.st_moe + ((before + shift) ** 2 - before ** 2) / (layers * tokens);
        assertClose(b.z_loss.st_moe, expectedZ, 1e-9, "z_loss", 1);
        assert.equal(sa.tokens, tokens);
      },
    ),
    runs,
  );
});

test("one micro-batch holding every sequence makes micro_batch = global = switch", () => {
  fc.assert(
    fc.property(arbitraryBatch(), ({ logits, topK, sequenceLengths }) => {
      const record = computeLosses(logits, topK, sequenceLengths, sequenceLengths.length);
      assertClose(record.lbl.micro_batch, record.lbl.switch, 1e-12, "micro_batch");
      assertClose(record.lbl.global, record.lbl.switch, 1e-12, "global");
      assertClose(record.max_vio.micro_batch, record.max_vio.global, 1e-12, "max_vio", 1);
    }),
    runs,
  );
});

test("micro-batches of one sequence make micro_batch = sequence", () => {
  fc.assert(
    fc.property(arbitraryBatch(), ({ logits, topK, sequenceLengths }) => {
      const record = computeLosses(logits, topK, sequenceLengths, 1);
      assertClose(record.lbl.micro_batch, record.lbl.sequence, 1e-12, "micro_batch");
    }),
    runs,
  );
});

test("z_loss.olmoe · k = z_loss.st_moe", () => {
  fc.assert(
    fc.property(arbitraryBatch(), ({ logits, topK, sequenceLengths }) => {
      const record = computeLosses(logits, topK, sequenceLengths);
      assertClose(record.z_loss.olmoe * topK, record.z_loss.st_moe, 1e-12, "z");
    }),
    runs,
  );
});

test("loads count routing slots: Σ_e c = T·k in every layer", () => {
  fc.assert(
    fc.property(arbitraryBatch(), ({ logits, topK, sequenceLengths }) => {
      const record = computeLosses(logits, topK, sequenceLengths);
      for (const row of record.load)
        assert.equal(
          row.reduce((a, b) => a + b, 0),
          logits.tokens * topK,
        );
    }),
    runs,
  );
});

test("lbl.hf equals k·lbl.switch when there is one layer", () => {
  fc.assert(
    fc.property(arbitraryBatch({ maxLayers: 1 }), ({ logits, topK, sequenceLengths }) => {
      const record = computeLosses(logits, topK, sequenceLengths);
      assertClose(record.lbl.hf, topK * record.lbl.switch, 1e-12, "hf");
    }),
    runs,
  );
});

test("changing the micro-batch size reuses the summary: same numbers as a fresh computation", () => {
  fc.assert(
    fc.property(arbitraryBatch(), ({ logits, topK, sequenceLengths }) => {
      const summary = summarize(logits, topK, sequenceLengths);
      for (let m = 1; m <= sequenceLengths.length; m++) {
        assert.deepEqual(lossRecord(summary, m), computeLosses(logits, topK, sequenceLengths, m));
      }
    }),
    { numRuns: 50 },
  );
});

test("lossRecord sums the whole batch's totals once per layer", async () => {
  const { totalsCounter, summarize: summarise } = await import("../src/lib/summary.js");
  const { lossRecord: record } = await import("../src/lib/losses/index.js");
  const data = Float64Array.from({ length: 3 * 20 * 6 }, (_, i) => Math.sin(i * 1.7));
  const summary = summarise({ data, layers: 3, tokens: 20, experts: 6 }, 2, [5, 5, 10]);
  const before = totalsCounter.wholeBatch;
  record(summary, 2);
  record(summary, 3);
  assert.equal(
    totalsCounter.wholeBatch - before,
    3,
    "one sum per layer, reused by every family and every micro-batch size",
  );
});

test("MaxVio's sampling floor: the approximation against a simulated uniform router", async () => {
  const { maxVioSamplingFloor, maxVioOfLoad } = await import("../src/lib/losses/max-vio.js");
  // A uniform router: every token picks k distinct experts at random.
  let state = 7;
  const next = () => (state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 4294967296;
  for (const [tokens, topK, experts] of [
    [240, 8, 64],
    [512, 2, 16],
    [8192, 8, 64],
  ]) {
    let total = 0;
    const batches = 300;
    for (let b = 0; b < batches; b++) {
      const load = new Float64Array(experts);
      for (let t = 0; t < tokens; t++) {
        const chosen = new Set<number>();
        while (chosen.size < topK) chosen.add(Math.floor(next() * experts));
        for (const e of chosen) load[e]++;
      }
      total += maxVioOfLoad(load, tokens, topK);
    }
    const simulated = total / batches;
    const floor = maxVioSamplingFloor(tokens, topK, experts);
    assert.ok(
      Math.abs(floor - simulated) < 0.1 * simulated,
      `T ${tokens}, k ${topK}, E ${experts}: approximation ${floor}, simulated ${simulated}`,
    );
  }
});
