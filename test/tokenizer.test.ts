// The byte-level BPE that both the training recipe and the browser use.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { Tokenizer, type TokenizerFile } from "../src/lib/model/tokenizer.js";
import { trainTokenizer } from "../src/lib/model/train-tokenizer.js";

const samples = readdirSync(new URL("../data/samples/", import.meta.url)).map((name) =>
  readFileSync(new URL(`../data/samples/${name}`, import.meta.url), "utf8"),
);
const shipped = new Tokenizer(
  JSON.parse(readFileSync(new URL("../data/tokenizer.json", import.meta.url), "utf8")) as TokenizerFile,
);

test("merges are learned most-frequent first, ties to the smaller pair", () => {
  // "ab" occurs 3 times, "bc" 3 times: (a,b) = (97,98) < (98,99) wins the tie
  const file = trainTokenizer(["abc abc abc"], 259);
  assert.deepEqual(file.merges[0], [97, 98]);
  assert.equal(file.endOfText, 256 + file.merges.length);
  const tokenizer = new Tokenizer(file);
  assert.deepEqual(tokenizer.encode("ab"), [256]);
});

test("the same corpus always gives the same merges", () => {
  assert.deepEqual(trainTokenizer(samples, 600), trainTokenizer(samples, 600));
});

const awkward = [
  "",
  "x",
  "    indented\n\tcode()",
  "emoji 🧪🔥 and ümlauts",
  "混合文字 mixed scripts العربية",
  "a".repeat(5000),
  "\u0000\u0001 control",
];

for (const [name, tokenizer] of [
  ["shipped", shipped],
  ["small", new Tokenizer(trainTokenizer(samples, 400))],
] as const) {
  test(`${name} tokenizer: decode(encode(text)) = text, ids within the vocabulary`, () => {
    for (const text of [...samples, ...awkward]) {
      const ids = tokenizer.encode(text);
      assert.equal(tokenizer.decode(ids), text);
      for (const id of ids) assert.ok(id >= 0 && id < tokenizer.vocabSize && id !== tokenizer.endOfText);
    }
  });
}

test("the shipped tokenizer has 4,096 ids and compresses both domains", () => {
  assert.equal(shipped.vocabSize, 4096);
  for (const text of samples) {
    const ratio = text.length / shipped.encode(text).length;
    assert.ok(ratio > 2.2, `only ${ratio.toFixed(2)} characters per token`);
  }
  assert.equal(shipped.tokenText(shipped.endOfText), "<|endoftext|>");
});
