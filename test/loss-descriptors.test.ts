// Each loss is defined once, as a descriptor: the record, the gradients, the
// CSV export and the loss tables are built from the list of descriptors, so a
// new variant (the example of docs/adding-a-loss.md) shows up in all of them
// with nothing else edited.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { lossName, type LossDescriptor } from "../src/lib/losses/descriptor.js";
import { lossDescriptors } from "../src/lib/losses/registry.js";
import { lossByName, lossRecord } from "../src/lib/losses/index.js";
import { differentiableLosses, lossGradient } from "../src/lib/losses/gradients.js";
import { recordToCsv } from "../src/lib/io/export.js";
import { lossRows } from "../src/components/loss-table.js";
import { summarize } from "../src/lib/summary.js";
import type { RouterLogits } from "../src/lib/types.js";
import { cv2ImportanceUnbiased } from "./fixtures/losses/cv2-importance-unbiased.js";
import { arbitraryBatch, assertClose } from "./helpers.js";

const withExample: readonly LossDescriptor[] = [...lossDescriptors, cv2ImportanceUnbiased];
const logits: RouterLogits = {
  data: Float64Array.from({ length: 2 * 6 * 4 }, (_, i) => Math.sin(i * 1.7) * 1.3),
  layers: 2,
  tokens: 6,
  experts: 4,
};
const lengths = [2, 4];

/** `Σ(I − Ī)² / (E − 1) / Ī²` of each layer, straight from the softmax, averaged over layers. */
function unbiasedImportanceByHand(x: RouterLogits): number {
  let total = 0;
  for (let l = 0; l < x.layers; l++) {
    const importance = new Array(x.experts).fill(0);
    for (let t = 0; t < x.tokens; t++) {
      const row = Array.from(x.data.subarray((l * x.tokens + t) * x.experts, (l * x.tokens + t + 1) * x.experts));
      const z = row.map(Math.exp),
        s = z.reduce((a, b) => a + b, 0);
      z.forEach((v, e) => (importance[e] += v / s));
    }
    const mean = importance.reduce((a, b) => a + b, 0) / x.experts;
    total += importance.reduce((a, v) => a + (v - mean) ** 2, 0) / (x.experts - 1) / mean ** 2;
  }
  return total / x.layers;
}

test("names are unique and every registered descriptor is complete", () => {
  const names = lossDescriptors.map(lossName);
  assert.equal(new Set(names).size, names.length);
  for (const d of lossDescriptors as readonly LossDescriptor[]) {
    assert.match(lossName(d), /^[a-z0-9_]+\.[a-z0-9_]+$/);
    assert.ok(d.formula.length > 0 && d.units.length > 0, lossName(d));
    assert.ok(d.note({ topK: 2, experts: 8, tokens: 100, microBatch: 2, unit: "sequence" }).length > 0, lossName(d));
  }
  assert.deepEqual(
    differentiableLosses,
    names.filter((n) => !n.startsWith("max_vio.") && n !== "cv2.load"),
  );
});

test("the record, the gradient, the CSV and the loss table all pick a new descriptor up", () => {
  const summary = summarize(logits, 2, lengths);
  const record = lossRecord(summary, 1, withExample);
  const value = lossByName(record, "cv2.importance_unbiased");
  assertClose(value, unbiasedImportanceByHand(logits), 1e-12, "record");
  // The registry's own entries are unchanged by the extra one.
  for (const d of lossDescriptors)
    assert.equal(lossByName(record, lossName(d)), lossByName(lossRecord(summary, 1), lossName(d)));

  const csv = recordToCsv(record, withExample);
  assert.ok(csv.split("\n").includes(`cv2.importance_unbiased,${value}`), "CSV line");
  assert.equal(
    recordToCsv(lossRecord(summary)).includes("importance_unbiased"),
    false,
    "the default export lists the registry only",
  );

  const rows = lossRows(record, { topK: 2, experts: 4, tokens: 6, microBatch: 1, unit: "sequence" }, withExample);
  const row = rows.find((r) => r.name === "cv2.importance_unbiased");
  assert.ok(row, "table row");
  assert.equal(row.value, value);
  assert.equal(row.note, "unbiased variance, as torch.var() computes it");

  // Gradient: central finite differences of the record's value.
  const gradient = lossGradient(logits, cv2ImportanceUnbiased, { topK: 2, sequenceLengths: lengths });
  const h = 1e-6;
  for (let i = 0; i < logits.data.length; i += 5) {
    const plus = Float64Array.from(logits.data);
    plus[i] += h;
    const minus = Float64Array.from(logits.data);
    minus[i] -= h;
    const numeric =
      (unbiasedImportanceByHand({ ...logits, data: plus }) - unbiasedImportanceByHand({ ...logits, data: minus })) /
      (2 * h);
    assertClose(gradient[i], numeric, 1e-6, `∂/∂x[${i}]`, 1e-6);
  }
});

test("the unbiased CV² is the population one times E/(E−1), value and gradient, on any batch", () => {
  fc.assert(
    fc.property(arbitraryBatch({ maxExperts: 10 }), ({ logits: x, topK, sequenceLengths }) => {
      const summary = summarize(x, topK, sequenceLengths);
      const record = lossRecord(summary, 1, withExample);
      const ratio = x.experts / (x.experts - 1);
      assertClose(lossByName(record, "cv2.importance_unbiased"), ratio * record.cv2.importance, 1e-12, "value", 1e-15);
      const population = lossGradient(x, "cv2.importance", { topK, sequenceLengths, summary });
      const unbiased = lossGradient(x, cv2ImportanceUnbiased, { topK, sequenceLengths, summary });
      unbiased.forEach((g, i) => assertClose(g, ratio * population[i], 1e-12, `gradient ${i}`, 1e-15));
    }),
    { numRuns: 40 },
  );
});

test("a descriptor without a gradient refuses one with its name", () => {
  assert.throws(
    () =>
      lossGradient(
        logits,
        lossDescriptors.find((d) => lossName(d) === "max_vio.global")!,
        { topK: 2 },
      ),
    /max_vio\.global has no gradient/,
  );
});

test("each descriptor's value at perfect balance is its balance()", () => {
  // Every token's probabilities uniform and the slots spread exactly: E = 4,
  // k = 2, tokens routed in rotation by a tiny tilt that leaves p ≈ uniform.
  const experts = 4,
    topK = 2,
    tokens = 8;
  const data = new Float64Array(tokens * experts);
  for (let t = 0; t < tokens; t++)
    for (let e = 0; e < experts; e++) data[t * experts + e] = (e - t + 4 * experts) % experts < topK ? 1e-9 : 0;
  const summary = summarize({ data, layers: 1, tokens, experts }, topK, [tokens]);
  const record = lossRecord(summary, 1);
  for (const d of lossDescriptors as readonly LossDescriptor[]) {
    const balance = d.balance(topK);
    if (balance === null) continue;
    assertClose(lossByName(record, lossName(d)), balance, 1e-6, lossName(d), 1e-6);
  }
});
