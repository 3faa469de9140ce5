// Windows of long text, and the batches a page sends: one forward pass over
// several equal-length sequences, cut back into per-sequence outputs, joins
// into the same batch as one pass per sequence.
import { test } from "node:test";
import assert from "node:assert/strict";
import { equalLengthRuns, joinWindows, splitBatch, splitIntoWindows } from "../src/lib/model/windows.js";

test("windows of at most `context` tokens, the last one shorter", () => {
  assert.deepEqual(splitIntoWindows([1, 2, 3, 4, 5], 2), [[1, 2], [3, 4], [5]]);
  assert.deepEqual(splitIntoWindows([], 4), []);
});

test("runs of equal length, at most maxBatch long", () => {
  const seqs = [[1, 2], [3, 4], [5, 6], [7], [8, 9], [1, 1]];
  assert.deepEqual(equalLengthRuns(seqs, 8), [[0, 1, 2], [3], [4, 5]]);
  assert.deepEqual(equalLengthRuns(seqs, 2), [[0, 1], [2], [3], [4, 5]]);
});

test("a batched pass, split and joined, equals one pass per sequence", () => {
  const [L, n, S, E] = [3, 4, 5, 6];
  // the value encodes (layer, sequence, token, expert), so any misplaced block shows
  const value = (l: number, b: number, t: number, e: number) => l * 1000 + b * 100 + t * 10 + e;
  const batched = new Float32Array(L * n * S * E);
  for (let l = 0; l < L; l++)
    for (let b = 0; b < n; b++)
      for (let t = 0; t < S; t++)
        for (let e = 0; e < E; e++) batched[((l * n + b) * S + t) * E + e] = value(l, b, t, e);
  const bias = Float32Array.from({ length: L * E }, (_, i) => i / 100);
  const parts = splitBatch({ router: batched, dims: [L, n, S, E], topK: 2, bias });
  const single = Array.from({ length: n }, (_, b) => {
    const router = new Float32Array(L * S * E);
    for (let l = 0; l < L; l++)
      for (let t = 0; t < S; t++) for (let e = 0; e < E; e++) router[(l * S + t) * E + e] = value(l, b, t, e);
    return { router, dims: [L, 1, S, E], topK: 2, bias };
  });
  const joinedBatched = joinWindows(parts);
  const joinedSingle = joinWindows(single);
  assert.deepEqual(Array.from(joinedBatched.logits.data), Array.from(joinedSingle.logits.data));
  assert.deepEqual(joinedBatched.sequenceLengths, [S, S, S, S]);
  assert.deepEqual(Array.from(joinedBatched.selectionBias!), Array.from(bias));
});
