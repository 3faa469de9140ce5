/**
 * Learns byte-level BPE merges from a corpus (Node only; used by the recipe).
 * Pre-tokens are counted once; pair counts are then updated incrementally
 * after each merge, touching only the words that contain the merged pair, and
 * the most frequent pair is taken from a lazy max-heap. Ties go to the pair
 * with the smaller ids, so the same corpus always gives the same merges.
 */
import { PRETOKEN_PATTERN, mergePair, pairKey, type TokenizerFile } from "./tokenizer.js";

export function trainTokenizer(texts: Iterable<string>, vocabSize: number): TokenizerFile {
  if (vocabSize < 257 || vocabSize > 65536)
    throw new Error(`vocabulary size must be within 257..65536, got ${vocabSize}`);
  const pattern = new RegExp(PRETOKEN_PATTERN, "gu");
  const counts = new Map<string, number>();
  for (const text of texts) for (const m of text.matchAll(pattern)) counts.set(m[0], (counts.get(m[0]) ?? 0) + 1);

  const encoder = new TextEncoder();
  const words: number[][] = [];
  const frequency: number[] = [];
  for (const [piece, count] of counts) {
    words.push(Array.from(encoder.encode(piece)));
    frequency.push(count);
  }

  const pairCount = new Map<number, number>();
  const pairWords = new Map<number, Set<number>>();
  const addPairs = (w: number, sign: number) => {
    const symbols = words[w];
    for (let i = 0; i + 1 < symbols.length; i++) {
      const key = pairKey(symbols[i], symbols[i + 1]);
      pairCount.set(key, (pairCount.get(key) ?? 0) + sign * frequency[w]);
      if (sign > 0) {
        let set = pairWords.get(key);
        if (!set) pairWords.set(key, (set = new Set()));
        set.add(w);
      }
    }
  };
  for (let w = 0; w < words.length; w++) addPairs(w, 1);

  const heap = new PairHeap();
  for (const [key, count] of pairCount) heap.push(count, key);

  const merges: [number, number][] = [];
  const target = vocabSize - 257; // bytes + end-of-text
  while (merges.length < target) {
    const top = heap.pop();
    if (!top) break;
    const [count, key] = top;
    if (pairCount.get(key) !== count) {
      // stale entry: re-queue with the current count if the pair still exists
      const current = pairCount.get(key) ?? 0;
      if (current > 0) heap.push(current, key);
      continue;
    }
    if (count < 2) break;
    const a = Math.floor(key / 65536),
      b = key % 65536;
    const id = 256 + merges.length;
    merges.push([a, b]);
    const affected = [...(pairWords.get(key) ?? [])];
    pairWords.delete(key);
    for (const w of affected) {
      addPairs(w, -1);
      const next = mergePair(words[w], a, b, id);
      words[w] = next;
      addPairs(w, 1);
      for (let i = 0; i + 1 < next.length; i++) {
        const k = pairKey(next[i], next[i + 1]);
        if (next[i] === id || next[i + 1] === id) heap.push(pairCount.get(k) ?? 0, k);
      }
    }
    pairCount.delete(key);
  }
  return {
    format: "moe-lab-bpe/1",
    pattern: PRETOKEN_PATTERN,
    merges,
    endOfText: 256 + merges.length,
    vocabSize: 257 + merges.length,
  };
}

/** Max-heap on (count, then smaller key first). */
class PairHeap {
  private counts: number[] = [];
  private keys: number[] = [];

  push(count: number, key: number): void {
    this.counts.push(count);
    this.keys.push(key);
    let i = this.counts.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  pop(): [number, number] | undefined {
    if (this.counts.length === 0) return undefined;
    const top: [number, number] = [this.counts[0], this.keys[0]];
    const lastCount = this.counts.pop()!,
      lastKey = this.keys.pop()!;
    if (this.counts.length > 0) {
      this.counts[0] = lastCount;
      this.keys[0] = lastKey;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1,
          r = l + 1;
        let best = i;
        if (l < this.counts.length && this.before(l, best)) best = l;
        if (r < this.counts.length && this.before(r, best)) best = r;
        if (best === i) break;
        this.swap(i, best);
        i = best;
      }
    }
    return top;
  }

  private before(i: number, j: number): boolean {
    return this.counts[i] > this.counts[j] || (this.counts[i] === this.counts[j] && this.keys[i] < this.keys[j]);
  }

  private swap(i: number, j: number): void {
    [this.counts[i], this.counts[j]] = [this.counts[j], this.counts[i]];
    [this.keys[i], this.keys[j]] = [this.keys[j], this.keys[i]];
  }
}
