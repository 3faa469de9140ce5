/**
 * Text longer than the model's context is routed in consecutive windows of at
 * most `context` tokens, each a sequence of its own; their router logits are
 * joined into one `layers × tokens × experts` batch with the windows as
 * sequence lengths, so every granularity of the LBL sees them as sequences.
 */
import type { LogitsBatch } from "../types.js";

export function splitIntoWindows(ids: readonly number[], context: number): number[][] {
  const windows: number[][] = [];
  for (let start = 0; start < ids.length; start += context) windows.push(ids.slice(start, start + context));
  return windows;
}

/** One forward pass's output: router logits `[L, 1, S_w, E]`, the model's top-k and its selection bias. */
export interface WindowOutput {
  readonly router: Float32Array;
  readonly dims: readonly number[];
  readonly topK: number;
  readonly bias?: Float32Array | null;
}

/**
 * Joins per-window router logits into one batch, with the model's top-k and
 * selection bias (the same in every window) when it has one.
 */
export function joinWindows(
  parts: readonly WindowOutput[],
): LogitsBatch & { readonly sequenceLengths: number[]; readonly selectionBias?: Float32Array } {
  const [layers, , , experts] = parts[0].dims;
  const sequenceLengths = parts.map((p) => p.dims[2]);
  const tokens = sequenceLengths.reduce((a, b) => a + b, 0);
  const data = new Float32Array(layers * tokens * experts);
  let offset = 0;
  for (const part of parts) {
    const seq = part.dims[2];
    for (let l = 0; l < layers; l++)
      data.set(part.router.subarray(l * seq * experts, (l + 1) * seq * experts), (l * tokens + offset) * experts);
    offset += seq;
  }
  const bias = parts[0].bias;
  return {
    logits: { data, layers, tokens, experts },
    sequenceLengths,
    topK: parts[0].topK,
    ...(bias ? { selectionBias: bias } : {}),
  };
}
