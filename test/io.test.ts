// The readers: valid files of every accepted layout, and each kind of broken file.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readLogits } from "../src/lib/io/read.js";
import { readNpy, writeNpy } from "../src/lib/io/npy.js";
import { readSafetensors, writeSafetensors } from "../src/lib/io/safetensors.js";
import { LabInputError } from "../src/lib/types.js";
import { describeReadError } from "../src/lib/io/read-error.js";

const values = Float32Array.from({ length: 2 * 3 * 4 }, (_, i) => Math.sin(i) * 3);

test(".npy float32 and float64, [L,T,E] and [T,E]", () => {
  const a = readLogits(writeNpy(values, [2, 3, 4]), "x.npy");
  assert.deepEqual([a.logits.layers, a.logits.tokens, a.logits.experts], [2, 3, 4]);
  assert.deepEqual(Array.from(a.logits.data), Array.from(values));
  const b = readLogits(writeNpy(Float64Array.from(values), [6, 4]), "x.npy");
  assert.deepEqual([b.logits.layers, b.logits.tokens, b.logits.experts], [1, 6, 4]);
  assert.ok(b.logits.data instanceof Float64Array);
});

test(".npy [L,B,S,E] implies B sequences of S tokens", () => {
  const input = readLogits(writeNpy(values, [1, 2, 3, 4]), "x.npy");
  assert.deepEqual(input.sequenceLengths, [3, 3]);
  assert.equal(input.logits.tokens, 6);
});

test(".npy in Fortran order and big-endian is read correctly", () => {
  // shape (2, 3): C order [[0,1,2],[3,4,5]] stored column-major as 0,3,1,4,2,5, big-endian f8
  const header = "{'descr': '>f8', 'fortran_order': True, 'shape': (2, 3), }";
  const padded = header + " ".repeat((64 - ((10 + header.length + 1) % 64)) % 64) + "\n";
  const bytes = new Uint8Array(10 + padded.length + 48);
  bytes.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(bytes.buffer).setUint16(8, padded.length, true);
  for (let i = 0; i < padded.length; i++) bytes[10 + i] = padded.charCodeAt(i);
  [0, 3, 1, 4, 2, 5].forEach((v, i) => new DataView(bytes.buffer).setFloat64(10 + padded.length + 8 * i, v, false));
  assert.deepEqual(Array.from(readNpy(bytes).logits.data), [0, 1, 2, 3, 4, 5]);
});

test(".safetensors: one [L,T,E] tensor, or one tensor per layer in numeric name order, with metadata", () => {
  const single = readLogits(
    writeSafetensors({ router_logits: { data: values, shape: [2, 3, 4] } }, { top_k: "2", sequence_lengths: "[1, 2]" }),
    "r.safetensors",
  );
  assert.equal(single.topK, 2);
  assert.deepEqual(single.sequenceLengths, [1, 2]);
  assert.deepEqual(Array.from(single.logits.data), Array.from(values));
  const layers: Record<string, { data: Float32Array; shape: number[] }> = {};
  // written out of order on purpose: layer.10 must come after layer.2
  for (const l of [10, 2, 0])
    layers[`layer.${l}`] = { data: Float32Array.from({ length: 12 }, () => l), shape: [3, 4] };
  const perLayer = readSafetensors(writeSafetensors(layers));
  assert.equal(perLayer.logits.layers, 3);
  assert.deepEqual([perLayer.logits.data[0], perLayer.logits.data[12], perLayer.logits.data[24]], [0, 2, 10]);
});

test("JSON: the worked-example shape, and [T,E] for one layer", () => {
  const input = readLogits(
    new TextEncoder().encode(
      JSON.stringify({
        router_logits: [
          [
            [1, 2],
            [3, 4],
          ],
        ],
        top_k: 1,
        sequence_lengths: [1, 1],
        micro_batch_sequences: 2,
      }),
    ),
    "a.json",
  );
  assert.deepEqual([input.topK, input.microBatchSequences, input.sequenceLengths], [1, 2, [1, 1]]);
  const flat = readLogits(
    new TextEncoder().encode(
      JSON.stringify({
        router_logits: [
          [1, 2],
          [3, 4],
        ],
      }),
    ),
    "a.json",
  );
  assert.equal(flat.logits.layers, 1);
});

const broken: [string, string, Uint8Array, RegExp][] = [
  ["empty file", "a.json", new Uint8Array(0), /is empty/],
  [
    "ragged JSON",
    "a.json",
    new TextEncoder().encode('{"router_logits": [[[1,2],[3]]]}'),
    /ragged.*\[0\]\[1\] has 1 entries, expected 2/,
  ],
  [
    "NaN in JSON as a string",
    "a.json",
    new TextEncoder().encode('{"router_logits": [[[1,"NaN"]]]}'),
    /every logit must be a number/,
  ],
  ["invalid JSON", "a.json", new TextEncoder().encode('{"router_logits": [[[1,2]]'), /not valid JSON/],
  ["JSON without router_logits", "a.json", new TextEncoder().encode('{"logits": 1}'), /no "router_logits"/],
  ["truncated .npy", "a.npy", writeNpy(values, [2, 3, 4]).slice(0, 150), /truncated/],
  [
    "npy with trailing bytes",
    "a.npy",
    new Uint8Array([...writeNpy(values, [2, 3, 4]), 1, 2, 3, 4]),
    /4 bytes after the array/,
  ],
  [
    "JSON named .npy",
    "a.npy",
    new TextEncoder().encode('{"router_logits": [[[1]]]}'),
    /named \.npy but its contents look like json/,
  ],
  ["npy named .safetensors", "a.safetensors", writeNpy(values, [2, 3, 4]), /look like npy/],
  [
    "garbage named .safetensors",
    "a.safetensors",
    new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),
    /is this really a \.safetensors file/,
  ],
  [
    "safetensors header that lies about its length",
    "a.safetensors",
    (() => {
      const b = writeSafetensors({ x: { data: values, shape: [2, 3, 4] } });
      new DataView(b.buffer).setBigUint64(0, BigInt(b.length), true);
      return b;
    })(),
    /header claims/,
  ],
  [
    "huge safetensors header",
    "a.safetensors",
    (() => {
      const b = new Uint8Array(16);
      new DataView(b.buffer).setBigUint64(0, 1n << 40n, true);
      return b;
    })(),
    /refused/,
  ],
  [
    "truncated safetensors",
    "a.safetensors",
    writeSafetensors({ x: { data: values, shape: [2, 3, 4] } }).slice(0, -8),
    /truncated/,
  ],
  [
    "inconsistent layer shapes",
    "a.safetensors",
    writeSafetensors({
      "layer.0": { data: new Float32Array(8), shape: [2, 4] },
      "layer.1": { data: new Float32Array(6), shape: [2, 3] },
    }),
    /inconsistent layers.*\[2, 3\].*\[2, 4\]/,
  ],
  [
    "NaN inside safetensors",
    "a.safetensors",
    writeSafetensors({ x: { data: Float32Array.from([0, NaN, 1, 2]), shape: [2, 2] } }),
    /token 0, expert 1 is NaN/,
  ],
  [
    "Infinity inside npy",
    "a.npy",
    writeNpy(Float32Array.from([0, 1, Infinity, 2]), [2, 2]),
    /token 1, expert 0 is Infinity/,
  ],
  ["unknown extension and content", "a.bin", new Uint8Array([0, 1, 2]), /cannot tell what a\.bin holds/],
];

for (const [what, name, bytes, message] of broken) {
  test(`refused with a clear message: ${what}`, () => {
    assert.throws(
      () => readLogits(bytes, name),
      (error: unknown) => error instanceof LabInputError && message.test(error.message),
    );
  });
}

test("a dtype we do not read is named, with the ones we do", () => {
  const bytes = writeNpy(values, [2, 3, 4]);
  const text = new TextDecoder("latin1").decode(bytes.subarray(0, 80)).replace("<f4", "<i4");
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  assert.throws(() => readLogits(bytes, "a.npy"), /dtype '<i4'.*float16, float32 or float64/);
  const st = writeSafetensors({ x: { data: values, shape: [2, 3, 4] } });
  const header = new TextDecoder().decode(st).replace('"F32"', '"I32"');
  assert.throws(
    () => readLogits(new TextEncoder().encode(header), "a.safetensors"),
    /dtype I32.*F16, BF16, F32 or F64/,
  );
});

test("a read error is called 'too large' only when an allocation failed", () => {
  assert.equal(describeReadError(new LabInputError("x.npy is empty")), "x.npy is empty");
  assert.match(
    describeReadError(new RangeError("Array buffer allocation failed")),
    /more memory than this browser tab could allocate/,
  );
  assert.match(
    describeReadError(new RangeError("Invalid typed array length: 4294967296")),
    /more memory than this browser tab/,
  );
  assert.equal(
    describeReadError(new RangeError("Maximum call stack size exceeded")),
    "unexpected error, please report it: Maximum call stack size exceeded",
  );
  assert.equal(
    describeReadError(new TypeError("x is undefined")),
    "unexpected error, please report it: x is undefined",
  );
});

test("a file's input becomes the LogitsBatch a summary takes once its top-k is known", async () => {
  const { batchOfInput } = await import("../src/lib/io/tensor.js");
  const logits = { data: Float32Array.from([0, 1, 2, 3, 4, 5]), layers: 1, tokens: 3, experts: 2 };
  assert.deepEqual(batchOfInput({ logits, topK: 1 }), { logits, topK: 1, sequenceLengths: [3] });
  assert.deepEqual(batchOfInput({ logits, sequenceLengths: [1, 2] }, 2).sequenceLengths, [1, 2]);
  assert.throws(() => batchOfInput({ logits }), /does not say top_k/);
});
