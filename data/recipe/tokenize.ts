/**
 * Trains OLMoE-mini's byte-level BPE on the training split and encodes both
 * splits with the same TypeScript tokenizer the browser runs.
 *
 * Writes data/tokenizer.json (committed) and, per split, token ids as
 * little-endian uint16 (`<split>.tokens.u16`) with one domain byte per token
 * (`<split>.domains.u8`: 0 code, 1 prose) and end-of-text between documents.
 *
 * usage: node --import tsx data/recipe/tokenize.ts [--vocab 4096] [--corpus data/corpus] [--out data] [--train-chars 8000000]
 */
import { createReadStream, readFileSync, writeFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { trainTokenizer } from "../../src/lib/model/train-tokenizer.js";
import { Tokenizer, type TokenizerFile } from "../../src/lib/model/tokenizer.js";

const { values } = parseArgs({
  options: {
    vocab: { type: "string", default: "4096" },
    corpus: { type: "string", default: "data/corpus" },
    out: { type: "string", default: "data" },
    "train-chars": { type: "string", default: "8000000" },
    reuse: { type: "boolean", default: false },
  },
});
const domains = { code: 0, prose: 1 } as const;

interface Doc {
  domain: keyof typeof domains;
  text: string;
}

async function* readDocs(path: string): AsyncGenerator<Doc> {
  for await (const line of createInterface({ input: createReadStream(path) })) if (line) yield JSON.parse(line) as Doc;
}

const trainPath = join(values.corpus!, "train.jsonl");
let file: TokenizerFile;
const tokenizerPath = join(values.out!, "tokenizer.json");
if (values.reuse) {
  file = JSON.parse(readFileSync(tokenizerPath, "utf8"));
} else {
  // Learn merges on an evenly spread subsample: every n-th document up to the budget.
  const docs: Doc[] = [];
  for await (const doc of readDocs(trainPath)) docs.push(doc);
  const total = docs.reduce((n, d) => n + d.text.length, 0);
  const stride = Math.max(1, Math.floor(total / Number(values["train-chars"])));
  const sample = docs.filter((_, i) => i % stride === 0).map((d) => d.text);
  const started = Date.now();
  file = trainTokenizer(sample, Number(values.vocab));
  console.error(
    `learned ${file.merges.length} merges on ${sample.reduce((n, t) => n + t.length, 0)} characters in ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
  writeFileSync(tokenizerPath, JSON.stringify(file));
}

const tokenizer = new Tokenizer(file);
const stats: Record<string, { documents: number; tokens: number; characters: number }> = {};
for (const split of ["train", "heldout"]) {
  const ids: number[] = [];
  const domainOf: number[] = [];
  for await (const doc of readDocs(join(values.corpus!, `${split}.jsonl`))) {
    const encoded = tokenizer.encode(doc.text);
    encoded.push(tokenizer.endOfText);
    for (const id of encoded) {
      ids.push(id);
      domainOf.push(domains[doc.domain]);
    }
    const key = `${split}/${doc.domain}`;
    const s = (stats[key] ??= { documents: 0, tokens: 0, characters: 0 });
    s.documents++;
    s.tokens += encoded.length;
    s.characters += doc.text.length;
  }
  writeFileSync(join(values.corpus!, `${split}.tokens.u16`), Uint16Array.from(ids));
  writeFileSync(join(values.corpus!, `${split}.domains.u8`), Uint8Array.from(domainOf));
}
writeFileSync(join(values.corpus!, "tokens.json"), JSON.stringify({ vocabSize: file.vocabSize, stats }, null, 1));
console.log(JSON.stringify(stats));
