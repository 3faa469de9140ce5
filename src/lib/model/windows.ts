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

/**
 * One forward pass over `n` sequences of equal length (`router` shaped
 * `[L, n, S, E]`) cut into `n` window outputs `[L, 1, S, E]`, in order: a
 * page batches its fixed sequences into one call and joins them as before.
 */
export function splitBatch(output: WindowOutput): WindowOutput[] {
  const [layers, n, seq, experts] = output.dims;
  const block = seq * experts;
  return Array.from({ length: n }, (_, b) => {
    const router = new Float32Array(layers * block);
    for (let l = 0; l < layers; l++)
      router.set(output.router.subarray((l * n + b) * block, (l * n + b + 1) * block), l * block);
    return { router, dims: [layers, 1, seq, experts], topK: output.topK, bias: output.bias };
  });
}

/** Runs of consecutive sequences of equal length, at most `maxBatch` long: the batches a page sends. */
export function equalLengthRuns(sequences: readonly (readonly number[])[], maxBatch: number): number[][] {
  const runs: number[][] = [];
  sequences.forEach((ids, i) => {
    const run = runs[runs.length - 1];
    if (run && run.length < maxBatch && sequences[run[0]].length === ids.length) run.push(i);
    else runs.push([i]);
  });
  return runs;
}
