// The two worked examples of the specification, every key, float64 and float32.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { computeLosses, type LossRecord } from "../src/lib/losses/index.js";
import { logitsFromNested } from "../src/lib/types.js";
import { assertClose } from "./helpers.js";

interface WorkedExample {
  name: string;
  router_logits: number[][][];
  sequence_lengths: number[];
  top_k: number;
  micro_batch_sequences: number;
  expected: LossRecord;
}

const examples: WorkedExample[] = JSON.parse(
  readFileSync(new URL("./fixtures/worked-examples.json", import.meta.url), "utf8"),
);

for (const precision of ["float64", "float32"] as const) {
  const tolerance = precision === "float64" ? 1e-6 : 1e-4;
  for (const example of examples) {
    test(`${example.name} matches every expected value in ${precision}`, () => {
      const record = computeLosses(
        logitsFromNested(example.router_logits, precision),
        example.top_k,
        example.sequence_lengths,
        example.micro_batch_sequences,
      );
      assert.deepEqual(Object.keys(record).sort(), Object.keys(example.expected).sort());
      for (const family of ["lbl", "z_loss", "cv2", "max_vio"] as const) {
        const expected = example.expected[family] as Record<string, number>;
        const actual = record[family] as Record<string, number>;
        assert.deepEqual(Object.keys(actual).sort(), Object.keys(expected).sort(), `keys of ${family}`);
        for (const key of Object.keys(expected)) assertClose(actual[key], expected[key], tolerance, `${family}.${key}`);
      }
      assert.deepEqual(record.load, example.expected.load);
    });
  }
}

test("the worked examples differ where the spec says they should", () => {
  const [, second] = examples;
  const record = computeLosses(
    logitsFromNested(second.router_logits),
    second.top_k,
    second.sequence_lengths,
    second.micro_batch_sequences,
  );
  // unequal micro-batch token counts (5 and 7) make global differ from switch
  assert.notEqual(record.lbl.global, record.lbl.switch);
  // pooled layers are not the same as k times the per-layer mean
  assert.ok(Math.abs(record.lbl.hf - second.top_k * record.lbl.switch) > 1e-3);
});
