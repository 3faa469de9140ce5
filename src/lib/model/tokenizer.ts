/**
 * Byte-level BPE, the one implementation that both the training recipe (via
 * `data/recipe/tokenize.ts`) and the browser use, so their ids cannot drift.
 *
 * Text is split into pre-tokens with GPT-2's pattern (words with their
 * leading space, numbers, punctuation runs, whitespace runs), each pre-token
 * is UTF-8 encoded, and learned merges of adjacent symbols are applied in the
 * order they were learned. Ids 0–255 are the bytes; merge i makes id 256 + i;
 * the last id is the end-of-text token that separates documents.
 */

export const PRETOKEN_PATTERN = String.raw`'(?:s|t|re|ve|m|ll|d)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`;

export interface TokenizerFile {
  format: "moe-lab-bpe/1";
  pattern: string;
  /** `[left, right]` ids of each merge, in the order learned. */
  merges: [number, number][];
  /** Id of the end-of-text token: 256 + merges.length. */
  endOfText: number;
  vocabSize: number;
}

export class Tokenizer {
  readonly vocabSize: number;
  readonly endOfText: number;
  private readonly pattern: RegExp;
  private readonly rank = new Map<number, number>(); // pair key → merge index
  private readonly bytesOf: Uint8Array[] = [];
  private readonly cache = new Map<string, number[]>();

  constructor(readonly file: TokenizerFile) {
    if (file.format !== "moe-lab-bpe/1") throw new Error(`unknown tokenizer format ${file.format}`);
    this.pattern = new RegExp(file.pattern, "gu");
    this.endOfText = file.endOfText;
    this.vocabSize = file.vocabSize;
    for (let b = 0; b < 256; b++) this.bytesOf.push(Uint8Array.of(b));
    file.merges.forEach(([a, b], i) => {
      this.rank.set(pairKey(a, b), i);
      const joined = new Uint8Array(this.bytesOf[a].length + this.bytesOf[b].length);
      joined.set(this.bytesOf[a]);
      joined.set(this.bytesOf[b], this.bytesOf[a].length);
      this.bytesOf.push(joined);
    });
  }

  /** Token ids of `text` (no end-of-text token added). */
  encode(text: string): number[] {
    const ids: number[] = [];
    for (const match of text.matchAll(this.pattern)) {
      const piece = match[0];
      let encoded = this.cache.get(piece);
      if (!encoded) {
        encoded = this.encodePiece(piece);
        if (this.cache.size < 200_000) this.cache.set(piece, encoded);
      }
      for (const id of encoded) ids.push(id);
    }
    return ids;
  }

  /** Each token's text, as the page shows it (partial UTF-8 sequences become �). */
  tokenText(id: number): string {
    if (id === this.endOfText) return "<|endoftext|>";
    return new TextDecoder().decode(this.bytesOf[id]);
  }

  decode(ids: readonly number[]): string {
    const parts: Uint8Array[] = ids.filter((id) => id !== this.endOfText).map((id) => this.bytesOf[id]);
    const total = parts.reduce((n, p) => n + p.length, 0);
    const bytes = new Uint8Array(total);
    let at = 0;
    for (const p of parts) {
      bytes.set(p, at);
      at += p.length;
    }
    return new TextDecoder().decode(bytes);
  }

  private encodePiece(piece: string): number[] {
    let symbols = Array.from(new TextEncoder().encode(piece));
    while (symbols.length > 1) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i + 1 < symbols.length; i++) {
        const r = this.rank.get(pairKey(symbols[i], symbols[i + 1]));
        if (r !== undefined && r < bestRank) {
          bestRank = r;
          best = i;
        }
      }
      if (best < 0) break;
      const [a, b] = this.file.merges[bestRank];
      symbols = mergePair(symbols, a, b, 256 + bestRank);
    }
    return symbols;
  }
}

/** `symbols` with every adjacent (a, b), left to right, replaced by `merged`. */
export function mergePair(symbols: readonly number[], a: number, b: number, merged: number): number[] {
  const next: number[] = [];
  for (let i = 0; i < symbols.length; i++) {
    if (i + 1 < symbols.length && symbols[i] === a && symbols[i + 1] === b) {
      next.push(merged);
      i++;
    } else next.push(symbols[i]);
  }
  return next;
}

export function pairKey(a: number, b: number): number {
  return a * 65536 + b;
}
