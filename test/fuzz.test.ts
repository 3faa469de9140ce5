// Random mutations of valid files: every outcome is either a clean read of
// finite logits or a LabInputError; never another exception, never a NaN.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { readLogits } from "../src/lib/io/read.js";
import { writeNpy } from "../src/lib/io/npy.js";
import { writeSafetensors } from "../src/lib/io/safetensors.js";
import { computeLosses } from "../src/lib/losses/index.js";
import { summarize } from "../src/lib/summary.js";
import { LabInputError } from "../src/lib/types.js";
import { bytesSource, planLogits, streamLogits } from "../src/lib/io/stream.js";
import { SummaryBuilder } from "../src/lib/summary.js";
import { lossRecord } from "../src/lib/losses/index.js";

const values = Float32Array.from({ length: 2 * 5 * 4 }, (_, i) => Math.cos(i) * 2);
const seeds: [string, Uint8Array][] = [
  ["a.npy", writeNpy(values, [2, 5, 4])],
  ["b.npy", writeNpy(Float64Array.from(values), [10, 4])],
  ["c.safetensors", writeSafetensors({ logits: { data: values, shape: [2, 5, 4] } }, { top_k: "2" })],
  [
    "d.safetensors",
    writeSafetensors({
      "l.0": { data: values.slice(0, 20), shape: [5, 4] },
      "l.1": { data: values.slice(20), shape: [5, 4] },
    }),
  ],
  [
    "e.json",
    new TextEncoder().encode(
      JSON.stringify({
        router_logits: [
          [
            [1, 2, 3],
            [0.5, -1, 2],
          ],
        ],
        top_k: 2,
        sequence_lengths: [1, 1],
      }),
    ),
  ],
];

const mutation = fc.oneof(
  fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant("truncate" as const), at: fc.nat(), value: fc.constant(0) }),
  fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant("delete" as const), at: fc.nat(), value: fc.constant(0) }),
);

function mutate(
  bytes: Uint8Array,
  steps: { kind: "flip" | "truncate" | "insert" | "delete"; at: number; value: number }[],
): Uint8Array {
  let out = Array.from(bytes);
  for (const { kind, at, value } of steps) {
    const i = out.length ? at % out.length : 0;
    if (kind === "flip") out[i] = value;
    else if (kind === "truncate") out = out.slice(0, i);
    else if (kind === "insert") out.splice(i, 0, value);
    else out.splice(i, 1);
  }
  return Uint8Array.from(out);
}

test("fuzzed files end in a clear error or in finite numbers", () => {
  const deadline = Date.now() + 8_000; // bounded time in the suite
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: seeds.length - 1 }),
      fc.array(mutation, { minLength: 1, maxLength: 4 }),
      (which, steps) => {
        if (Date.now() > deadline) return;
        const [name, bytes] = seeds[which];
        try {
          const input = readLogits(mutate(bytes, steps), name);
          const record = computeLosses(input.logits, input.topK ?? 1, input.sequenceLengths, 1);
          for (const family of ["lbl", "z_loss", "cv2", "max_vio"] as const) {
            for (const v of Object.values(record[family]))
              assert.ok(Number.isFinite(v), `non-finite ${family} from ${name}`);
          }
        } catch (error) {
          assert.ok(
            error instanceof LabInputError,
            `${name}: unexpected ${(error as Error)?.constructor?.name}: ${(error as Error)?.message}`,
          );
          assert.ok((error as Error).message.length > 10);
        }
      },
    ),
    { numRuns: 3000 },
  );
});

test("fuzzed files through the streaming reader (as the page reads them): a clear error or finite numbers", async () => {
  const deadline = Date.now() + 8_000;
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 0, max: seeds.length - 1 }),
      fc.array(mutation, { minLength: 1, maxLength: 4 }),
      fc.integer({ min: 1, max: 64 }),
      async (which, steps, chunkBytes) => {
        if (Date.now() > deadline) return;
        const [name, bytes] = seeds[which];
        const source = bytesSource(mutate(bytes, steps), name);
        try {
          const plan = await planLogits(source);
          const topK = Math.min(plan.topK ?? 1, plan.experts);
          const lengths = plan.sequenceLengths ?? [plan.tokens];
          if (lengths.reduce((a, b) => a + b, 0) !== plan.tokens || topK < 1) return; // the page asks the reader in this case
          const builder = new SummaryBuilder(plan, topK, lengths);
          await streamLogits(source, plan, (values, count) => builder.addRows(values, 0, count), undefined, {
            chunkBytes: chunkBytes * 4,
          });
          const record = lossRecord(builder.finish(), 1);
          for (const family of ["lbl", "z_loss", "cv2", "max_vio"] as const) {
            for (const v of Object.values(record[family]))
              assert.ok(Number.isFinite(v), `non-finite ${family} from ${name}`);
          }
        } catch (error) {
          assert.ok(
            error instanceof LabInputError,
            `${name}: unexpected ${(error as Error)?.constructor?.name}: ${(error as Error)?.message}`,
          );
        }
      },
    ),
    { numRuns: 2000 },
  );
});

test("streaming in small chunks gives exactly the whole-file summary", async () => {
  for (const [name, bytes] of seeds) {
    const whole = readLogits(bytes, name);
    const topK = Math.min(2, whole.logits.experts);
    const expected = lossRecord(summarize(whole.logits, topK, whole.sequenceLengths), 1);
    const source = bytesSource(bytes, name);
    const plan = await planLogits(source);
    const builder = new SummaryBuilder(plan, topK, plan.sequenceLengths ?? [plan.tokens]);
    await streamLogits(source, plan, (values, count) => builder.addRows(values, 0, count), undefined, {
      chunkBytes: 24,
    });
    assert.deepEqual(lossRecord(builder.finish(), 1), expected, name);
  }
});
