// splitWeights (src/lib/model/onnx-weights.ts): an ONNX model split into a
// graph whose weights are inputs and the weights to feed it. The fixtures are
// written by python3-onnx (an independent protobuf writer): tiny-shared and
// tiny-distinct compute (x + W) · W2 + float(B), the first with W2 an Identity
// of W (as torch writes equal weights), the second with W2 a tensor of its
// own, different node names and metadata; tiny-typed stores W in float_data.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import fc from "fast-check";
import * as ort from "onnxruntime-node";
import { alignedWeights, splitWeights, weightFeeds, weightValues } from "../src/lib/model/onnx-weights.js";

const fixture = (name: string) => new Uint8Array(readFileSync(new URL(`./fixtures/${name}.onnx`, import.meta.url)));
const shared = fixture("tiny-shared");
const distinct = fixture("tiny-distinct");

test("splitWeights reads each initializer's name, type, shape and bytes; an Identity of a weight becomes a weight", () => {
  const split = splitWeights(shared);
  assert.deepEqual(split.inputNames, ["x"]);
  assert.deepEqual(
    split.weights.map((w) => [w.name, w.dataType, w.dims]),
    [
      ["B", 10, [2]],
      ["W", 1, [2]],
      ["W2", 1, [2]],
    ],
  );
  assert.deepEqual([...weightValues(split.weights[1])], [1.5, -2]);
  assert.deepEqual([...weightValues(split.weights[2])], [1.5, -2]);
  // float16 bits of 0.25 and 3.0
  assert.deepEqual([...weightValues(split.weights[0])], [0x3400, 0x4200]);
});

/** The file's bytes starting `shift` bytes into a buffer of their own, so that its weights lie at other alignments. */
function shifted(file: Uint8Array, shift: number): Uint8Array {
  const out = new Uint8Array(file.length + shift).subarray(shift);
  out.set(file);
  return out;
}

test("a weight is a view of the file's bytes, not a copy; its values and feeds are the same at any alignment", async () => {
  const session = await ort.InferenceSession.create(splitWeights(shared).graph);
  const x = { x: new ort.Tensor("float32", Float32Array.from([1, 1]), [2]) };
  const offsets = new Set<number>();
  for (let shift = 0; shift < 8; shift++) {
    const file = shifted(shared, shift);
    const { weights } = splitWeights(file);
    for (const w of weights) {
      assert.equal(w.data.buffer, file.buffer, `${w.name} is a view of the file`);
      offsets.add(w.data.byteOffset % 4);
    }
    assert.deepEqual(
      weights.map((w) => [...weightValues(w)]),
      [
        [0x3400, 0x4200],
        [1.5, -2],
        [1.5, -2],
      ],
    );
    // Aligned once for a session: the same weight where its bytes are aligned, a copy of them where not.
    const aligned = alignedWeights(weights);
    weights.forEach((w, i) => {
      const width = w.dataType === 10 ? 2 : 4;
      assert.deepEqual([...aligned[i].data], [...w.data]);
      assert.equal(aligned[i].data.byteOffset % width, 0);
      assert.equal(aligned[i] === w, w.data.byteOffset % width === 0, `${w.name} copied only where unaligned`);
    });
    for (const fed of [weights, alignedWeights(weights)]) {
      const out = await session.run({ ...x, ...weightFeeds(ort.Tensor, fed) });
      assert.deepEqual([...(out.y.data as Float32Array)], [4, 5]); // by hand, as below
    }
  }
  assert.equal(offsets.size, 4, "the shifts put the weights at every offset modulo 4");
});

test("splitWeights lists the graph's outputs and its nodes as python3-onnx wrote them, the weight-copying Identity aside", () => {
  for (const model of [shared, distinct]) {
    const split = splitWeights(model);
    assert.deepEqual(split.outputNames, ["y"]);
    assert.deepEqual(split.nodes, [
      { opType: "Add", inputs: ["x", "W"], outputs: ["a"] },
      { opType: "Mul", inputs: ["a", "W2"], outputs: ["m"] },
      { opType: "Cast", inputs: ["B"], outputs: ["b32"] },
      { opType: "Add", inputs: ["m", "b32"], outputs: ["y"] },
    ]);
  }
});

test("checkpoints of one graph split into the same graph bytes, whatever their node names, metadata and shared weights", () => {
  const a = splitWeights(shared);
  const b = splitWeights(distinct);
  assert.equal(a.key, b.key);
  assert.deepEqual(a.graph, b.graph);
  assert.notDeepEqual(
    a.weights.map((w) => [...w.data]),
    b.weights.map((w) => [...w.data]),
  );
});

test("one session of the split graph, fed each checkpoint's weights, computes what each checkpoint's own session does", async () => {
  const x = () => ({ x: new ort.Tensor("float32", Float32Array.from([1, 1]), [2]) });
  const split = splitWeights(shared);
  const session = await ort.InferenceSession.create(split.graph);
  assert.deepEqual(session.inputNames, ["x", "B", "W", "W2"]);
  // by hand: (1 + 1.5)·1.5 + 0.25 = 4, (1 − 2)·(−2) + 3 = 5; (1 + 0.5)·4 − 1 = 5, (1 + 2)·0.5 + 0.125 = 1.625
  for (const [model, expected] of [
    [shared, [4, 5]],
    [distinct, [5, 1.625]],
  ] as const) {
    const fed = await session.run({ ...x(), ...weightFeeds(ort.Tensor, splitWeights(model).weights) });
    assert.deepEqual([...(fed.y.data as Float32Array)], expected);
    const own = await (await ort.InferenceSession.create(model)).run(x());
    assert.deepEqual([...(own.y.data as Float32Array)], expected);
  }
});

test("what splitWeights cannot split exactly it refuses, with a reason", () => {
  assert.throws(() => splitWeights(fixture("tiny-typed")), /W is not stored as raw data/);
  assert.throws(() => splitWeights(new Uint8Array(0)), /not an ONNX model/);
  assert.throws(() => splitWeights(new TextEncoder().encode("<!doctype html><title>404</title>")), Error);
  assert.throws(() => splitWeights(shared.subarray(0, shared.length - 7)), /truncated|ends inside/);
});

test("any bytes: splitWeights returns or throws an Error, and never reads past the end", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(shared.length), (noise, cut) => {
      for (const bytes of [noise, shared.subarray(0, cut), Uint8Array.from([...shared.subarray(0, cut), ...noise])]) {
        try {
          const split = splitWeights(bytes);
          for (const w of split.weights) assert.ok(w.data.length <= bytes.length);
        } catch (error) {
          assert.ok(error instanceof Error);
        }
      }
    }),
    { numRuns: 300 },
  );
});
