/**
 * The lab's forward pass's one matrix product (every projection and every
 * expert of src/lib/model/router-forward.ts), in two implementations that
 * compute the same numbers bit for bit:
 *
 * - `linearLanes`, plain JavaScript: the meaning, and the fallback where
 *   WebAssembly SIMD is missing;
 * - `linearOn(kernel)`, the same sums in WebAssembly SIMD
 *   (linear-kernel.wat, assembled into linear-kernel.wasm.ts), 3–4× faster
 *   (`npm run bench -- OLMoE`). The caller instantiates the module (a worker,
 *   Node), since this library runs on ES2022 alone.
 *
 *   out[t, o] = Σ_i x[t, i] · w[o, i]
 *
 * Each sum runs in four float32 lanes (lane j takes the i ≡ j mod 4, in order
 * of i; every product and every sum rounded to float32, no fused multiply-add)
 * and adds them as (l0 + l1) + (l2 + l3): four-wide SIMD's natural order. A
 * float32 MatMul's accumulation order is its implementation's own (ONNX does
 * not fix it; onnxruntime's MLAS kernels accumulate in float32 too), and the
 * router logits stay within 3e-6 of onnxruntime-node's
 * (test/model/router-forward.test.ts). Each sum depends on its own row and
 * column alone, so a token's numbers do not depend on the tokens beside it.
 */

/** out[t, o] = Σ_i x[t, i] · w[o, i], for x [rows, inputs] and w [outputs, inputs]; returns `out` [rows, outputs]. */
export type Linear = (
  x: Float32Array,
  w: Float32Array,
  inputs: number,
  outputs: number,
  out: Float32Array,
) => Float32Array;

/** The four-lane float32 sums in plain JavaScript (the definition the WebAssembly kernel is tested against). */
export const linearLanes: Linear = (x, w, inputs, outputs, out) => {
  const f = Math.fround;
  const rows = x.length / inputs;
  const whole = inputs - (inputs % 4);
  for (let t = 0; t < rows; t++) {
    const xt = t * inputs;
    for (let o = 0; o < outputs; o++) {
      const wo = o * inputs;
      let l0 = 0,
        l1 = 0,
        l2 = 0,
        l3 = 0;
      let i = 0;
      for (; i < whole; i += 4) {
        l0 = f(l0 + f(x[xt + i] * w[wo + i]));
        l1 = f(l1 + f(x[xt + i + 1] * w[wo + i + 1]));
        l2 = f(l2 + f(x[xt + i + 2] * w[wo + i + 2]));
        l3 = f(l3 + f(x[xt + i + 3] * w[wo + i + 3]));
      }
      // A last partial group: the kernel reads zeros past the row's end (0 · 0 added: +0).
      if (i < inputs) {
        l0 = f(l0 + f(x[xt + i] * w[wo + i]));
        l1 = f(l1 + (i + 1 < inputs ? f(x[xt + i + 1] * w[wo + i + 1]) : 0));
        l2 = f(l2 + (i + 2 < inputs ? f(x[xt + i + 2] * w[wo + i + 2]) : 0));
        l3 = f(l3 + 0);
      }
      out[t * outputs + o] = f(f(l0 + l1) + f(l2 + l3));
    }
  }
  return out;
};

/** What the instantiated linear-kernel.wat exports. */
export interface LinearKernelExports {
  readonly memory: { readonly buffer: ArrayBuffer; grow(pages: number): number };
  linear(x: number, w: number, out: number, rows: number, inputs: number, outputs: number): void;
}

const PAGE = 65536;

/**
 * `Linear` on the WebAssembly kernel: copies x and w into the kernel's memory
 * (padded to even rows and outputs and to whole groups of four inputs, with
 * zeros), runs it, and copies the result out. The copies cost ~1 % of the
 * product at OLMoE-mini's sizes; the memory grows to the largest call seen.
 */
export function linearOn(kernel: LinearKernelExports): Linear {
  return (x, w, inputs, outputs, out) => {
    const rows = x.length / inputs;
    const stride = Math.ceil(inputs / 4) * 4;
    const paddedRows = rows + (rows % 2);
    const paddedOutputs = outputs + (outputs % 2);
    const xBytes = paddedRows * stride * 4;
    const wBytes = paddedOutputs * stride * 4;
    const outBytes = paddedRows * paddedOutputs * 4;
    const needed = xBytes + wBytes + outBytes;
    const have = kernel.memory.buffer.byteLength;
    if (needed > have) kernel.memory.grow(Math.ceil((needed - have) / PAGE));
    const memory = new Float32Array(kernel.memory.buffer);
    const [xAt, wAt, outAt] = [0, xBytes, xBytes + wBytes];
    copyPadded(x, rows, inputs, memory, xAt / 4, paddedRows, stride);
    copyPadded(w, outputs, inputs, memory, wAt / 4, paddedOutputs, stride);
    kernel.linear(xAt, wAt, outAt, paddedRows, stride, paddedOutputs);
    if (paddedOutputs === outputs) out.set(memory.subarray(outAt / 4, outAt / 4 + rows * outputs));
    else
      for (let t = 0; t < rows; t++)
        out.set(memory.subarray(outAt / 4 + t * paddedOutputs, outAt / 4 + t * paddedOutputs + outputs), t * outputs);
    return out;
  };
}

/** A [rows, width] matrix into `memory` at `at` as [paddedRows, stride], zeros around it. */
function copyPadded(
  matrix: Float32Array,
  rows: number,
  width: number,
  memory: Float32Array,
  at: number,
  paddedRows: number,
  stride: number,
): void {
  if (stride === width) memory.set(matrix.subarray(0, rows * width), at);
  else
    for (let r = 0; r < rows; r++) {
      memory.set(matrix.subarray(r * width, (r + 1) * width), at + r * stride);
      memory.fill(0, at + r * stride + width, at + (r + 1) * stride);
    }
  memory.fill(0, at + rows * stride, at + paddedRows * stride);
}
