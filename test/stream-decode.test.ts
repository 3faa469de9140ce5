// streamLogits decodes every chunk that is not a plain aligned float32 or
// float64 view into the same reused arrays (DecodeBuffers): the values a
// consumer sees, chunk by chunk, must be those of the whole file read at once.
import { test } from "node:test";
import assert from "node:assert/strict";
import { DecodeBuffers, decodeFloats } from "../src/lib/io/tensor.js";
import { npyHeader } from "../src/lib/io/npy.js";
import { readLogits } from "../src/lib/io/read.js";
import { bytesSource, planLogits, streamLogits, summaryForPlan } from "../src/lib/io/stream.js";
import { summarize } from "../src/lib/summary.js";
import { normalGenerator } from "../src/lib/random.js";

const [layers, tokens, experts, topK] = [2, 300, 8, 2];
const count = layers * tokens * experts;
const normal = normalGenerator(9);
const values = Float32Array.from({ length: count }, () => 1.5 * normal());

function float16Bits(x: number): number {
  // Round to the nearest float16 (values here are normal and in range).
  const sign = x < 0 ? 0x8000 : 0;
  const a = Math.abs(x);
  const exponent = Math.floor(Math.log2(a));
  const fraction = Math.round((a / 2 ** exponent - 1) * 1024);
  return fraction === 1024 ? sign | ((exponent + 16) << 10) : sign | ((exponent + 15) << 10) | fraction;
}

function bfloat16Bits(x: number): number {
  return new Uint32Array(Float32Array.of(x).buffer)[0] >>> 16; // truncated: an exact bfloat16 value
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) out.set(p, (at += p.length) - p.length);
  return out;
}

function halves(bits: (x: number) => number, littleEndian = true): Uint8Array {
  const out = new DataView(new ArrayBuffer(count * 2));
  values.forEach((x, i) => out.setUint16(i * 2, bits(x), littleEndian));
  return new Uint8Array(out.buffer);
}

/** A safetensors file whose data starts `misalignment` bytes past a multiple of 4. */
function safetensors(dtype: string, data: Uint8Array, misalignment: number): Uint8Array {
  const json = JSON.stringify({ logits: { dtype, shape: [layers, tokens, experts], data_offsets: [0, data.length] } });
  const pad = (((misalignment - 8 - json.length) % 4) + 4) % 4;
  const header = new TextEncoder().encode(json + " ".repeat(pad));
  assert.equal((8 + header.length) % 4, misalignment);
  const length = new Uint8Array(8);
  new DataView(length.buffer).setBigUint64(0, BigInt(header.length), true);
  return concat(length, header, data);
}

const bigEndianFloats = (() => {
  const out = new DataView(new ArrayBuffer(count * 4));
  values.forEach((x, i) => out.setFloat32(i * 4, x, false));
  return new Uint8Array(out.buffer);
})();

const files: [string, Uint8Array][] = [
  ["float16 .npy", concat(npyHeader("<f2", [layers, tokens, experts]), halves(float16Bits))],
  ["big-endian float32 .npy", concat(npyHeader(">f4", [layers, tokens, experts]), bigEndianFloats)],
  ["bfloat16 .safetensors", safetensors("BF16", halves(bfloat16Bits), 0)],
  // A header whose length puts the float32 data off a 4-byte boundary: the chunks are copied, not viewed.
  ["misaligned float32 .safetensors", safetensors("F32", new Uint8Array(values.buffer), 1)],
];

for (const [what, file] of files)
  test(`a ${what} streams, chunk after chunk in reused arrays, to the whole file's summary`, async () => {
    const name = what.endsWith(".npy") ? "logits.npy" : "logits.safetensors";
    const whole = readLogits(file, name);
    const expected = summarize(whole.logits, topK);
    for (const chunkBytes of [16, 1000, 4096, 1 << 20]) {
      const source = bytesSource(file, name);
      const plan = await planLogits(source);
      const builder = summaryForPlan(plan, topK, [tokens]);
      const seen: unknown[] = [];
      await streamLogits(
        source,
        plan,
        (chunk, rows) => {
          seen.push(chunk.buffer);
          builder.addRows(chunk, 0, rows);
        },
        undefined,
        { chunkBytes },
      );
      assert.deepEqual(builder.finish(), expected, `${what}, chunks of ${chunkBytes} bytes`);
      if (chunkBytes < 4096) assert.equal(new Set(seen).size, 1, "every chunk was decoded into the same memory");
    }
  });

test("decodeFloats into DecodeBuffers gives the values it gives into new arrays, in memory it reuses", () => {
  const buffers = new DecodeBuffers();
  const bytes = halves(float16Bits);
  const first = decodeFloats(bytes, 0, 100, "float16", true, buffers);
  assert.deepEqual(first, decodeFloats(bytes, 0, 100, "float16"));
  const second = decodeFloats(bytes, 200, 50, "float16", true, buffers);
  assert.deepEqual(second, decodeFloats(bytes, 200, 50, "float16"));
  assert.equal(second.buffer, first.buffer, "a smaller count reuses the array");
  const larger = decodeFloats(bytes, 0, 400, "float16", true, buffers);
  assert.equal(larger.length, 400);
  assert.deepEqual(larger, decodeFloats(bytes, 0, 400, "float16"));
});
