// The forward pass's matrix product (src/lib/model/linear-kernel.ts): the
// WebAssembly SIMD kernel computes what its JavaScript definition says, bit
// for bit, at any shape (its padding included); the definition's summation
// order is the one it states, on a hand-derived case where the order decides
// the answer; and the shipped bytes are the assembly of the shipped source.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { linearLanes, linearOn, type LinearKernelExports } from "../src/lib/model/linear-kernel.js";
import { linearKernelWasm } from "../src/lib/model/linear-kernel.wasm.js";
// @ts-expect-error a plain ES module of the build scripts, without types
import { assembledModule } from "../scripts/assemble-wasm.mjs";
import { readFileSync } from "node:fs";

const kernel = () =>
  new WebAssembly.Instance(new WebAssembly.Module(linearKernelWasm)).exports as unknown as LinearKernelExports;

const sameBits = (a: Float32Array, b: Float32Array) => a.length === b.length && a.every((v, i) => Object.is(v, b[i]));

test("the shipped kernel bytes are linear-kernel.wat assembled (node scripts/assemble-wasm.mjs)", async () => {
  const shipped = readFileSync(new URL("../src/lib/model/linear-kernel.wasm.ts", import.meta.url), "utf8");
  assert.equal(shipped, await assembledModule());
});

test("the four lanes are summed as (l0 + l1) + (l2 + l3), each step in float32", () => {
  // Lanes: 1e8, 1, −1e8, 1. In float32, 1e8 + 1 rounds back to 1e8 (its spacing there is 8), and so does
  // −1e8 + 1: the lanes give 1e8 + (−1e8) = 0, where a sum in order of i would give 1 and the exact sum is 2.
  const x = Float32Array.of(1e8, 1, -1e8, 1);
  const w = Float32Array.of(1, 1, 1, 1);
  assert.deepEqual([...linearLanes(x, w, 4, 1, new Float32Array(1))], [0]);
  assert.deepEqual([...linearOn(kernel())(x, w, 4, 1, new Float32Array(1))], [0]);
  // Eight inputs: lane 0 takes i = 0 and 4, so 2²⁴ + 1, which rounds to 2²⁴ in float32 (a tie, to even); lanes 1–3
  // hold 1 each. (2²⁴ + 1) + (1 + 1) = 2²⁴ + 2. In order of i every + 1 is lost (2²⁴); the exact sum is 2²⁴ + 4.
  const y = Float32Array.of(2 ** 24, 1, 0, 1, 1, 0, 1, 0);
  const ones = new Float32Array(8).fill(1);
  assert.deepEqual([...linearLanes(y, ones, 8, 1, new Float32Array(1))], [2 ** 24 + 2]);
  assert.deepEqual([...linearOn(kernel())(y, ones, 8, 1, new Float32Array(1))], [2 ** 24 + 2]);
});

test("a hand-checked product: two tokens, three outputs, five inputs (a partial group of four)", () => {
  const x = Float32Array.of(1, 2, 3, 4, 5, -1, 0.5, 0, 2, -2);
  const w = Float32Array.of(1, 0, 0, 0, 0, 0, 1, 0, 1, 0, 1, 1, 1, 1, 1);
  // row 0: [1, 2 + 4, 1 + 2 + 3 + 4 + 5]; row 1: [−1, 0.5 + 2, −1 + 0.5 + 0 + 2 − 2] (all exact in float32)
  const expected = [1, 6, 15, -1, 2.5, -0.5];
  assert.deepEqual([...linearLanes(x, w, 5, 3, new Float32Array(6))], expected);
  assert.deepEqual([...linearOn(kernel())(x, w, 5, 3, new Float32Array(6))], expected);
});

test("the WebAssembly kernel equals its JavaScript definition bit for bit, at any shape, and stays near the exact sum", () => {
  const product = linearOn(kernel()); // one instance throughout: its memory grows and is reused
  const float = fc.float({ min: Math.fround(-100), max: Math.fround(100), noNaN: true });
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 9 }),
      fc.integer({ min: 1, max: 13 }),
      fc.integer({ min: 1, max: 7 }),
      fc.array(float, { minLength: 9 * 13, maxLength: 9 * 13 }),
      fc.array(float, { minLength: 7 * 13, maxLength: 7 * 13 }),
      (rows, inputs, outputs, xs, ws) => {
        const x = Float32Array.from(xs.slice(0, rows * inputs));
        const w = Float32Array.from(ws.slice(0, outputs * inputs));
        const ours = product(x, w, inputs, outputs, new Float32Array(rows * outputs));
        const definition = linearLanes(x, w, inputs, outputs, new Float32Array(rows * outputs));
        assert.ok(sameBits(ours, definition), `${rows} × ${inputs} · ${outputs}: ${ours} ≠ ${definition}`);
        for (let t = 0; t < rows; t++)
          for (let o = 0; o < outputs; o++) {
            let exact = 0;
            let scale = 0;
            for (let i = 0; i < inputs; i++) {
              exact += x[t * inputs + i] * w[o * inputs + i];
              scale += Math.abs(x[t * inputs + i] * w[o * inputs + i]);
            }
            // float32 rounding of every product and sum: a few units of 2⁻²⁴ of the terms' magnitude.
            assert.ok(
              Math.abs(ours[t * outputs + o] - exact) <= 1e-6 * (scale + 1),
              `${ours[t * outputs + o]} vs ${exact}`,
            );
          }
      },
    ),
    { numRuns: 300 },
  );
});

test("a large call after small ones grows the kernel's memory and gives the same numbers as a fresh kernel", () => {
  const product = linearOn(kernel());
  product(Float32Array.of(1, 2), Float32Array.of(3, 4), 2, 1, new Float32Array(1));
  const [rows, inputs, outputs] = [1000, 96, 64]; // 0.64 MB: past the first 64 KB page
  const x = Float32Array.from({ length: rows * inputs }, (_, i) => Math.sin(i));
  const w = Float32Array.from({ length: outputs * inputs }, (_, i) => Math.cos(i));
  const grown = product(x, w, inputs, outputs, new Float32Array(rows * outputs));
  assert.ok(sameBits(grown, linearLanes(x, w, inputs, outputs, new Float32Array(rows * outputs))));
});
