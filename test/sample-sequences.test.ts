// The sample batch the pages route (src/lib/model/sample-sequences.ts): each
// domain's texts are encoded only as far as its sequences reach, and the
// windows are those of every text encoded in full.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { Tokenizer, type TokenizerFile } from "../src/lib/model/tokenizer.js";
import { sampleSequences } from "../src/lib/model/sample-sequences.js";

const tokenizer = new Tokenizer(
  JSON.parse(readFileSync(new URL("../data/tokenizer.json", import.meta.url), "utf8")) as TokenizerFile,
);
const samples = Object.fromEntries(
  ["python", "javascript", "c", "prose-docs", "prose-fortunes"].map((name) => [
    name,
    readFileSync(new URL(`../data/samples/${name}.txt`, import.meta.url), "utf8"),
  ]),
);

/** The windows cut from each domain's texts, every text encoded in full first. */
function fromEveryText(length: number, perDomain: number) {
  const out: { ids: number[]; domain: string }[] = [];
  for (const [domain, names] of [
    ["code", ["python", "javascript", "c"]],
    ["prose", ["prose-docs", "prose-fortunes"]],
  ] as const) {
    const ids = names.flatMap((name) => tokenizer.encode(samples[name]));
    for (let i = 0; i < perDomain && (i + 1) * length <= ids.length; i++)
      out.push({ ids: ids.slice(i * length, (i + 1) * length), domain });
  }
  return out;
}

test("the sample windows equal those of every text encoded in full, within one text and across texts", () => {
  const pythonTokens = tokenizer.encode(samples.python).length;
  // The pages' batches (2 and 4 per domain), windows that reach into the second and third code
  // texts, and more than the texts hold (as many full windows as there are).
  for (const [length, perDomain] of [
    [128, 2],
    [128, 4],
    [256, 8],
    [pythonTokens, 2],
    [pythonTokens - 1, 3],
    [1000, 100],
  ]) {
    const expected = fromEveryText(length, perDomain);
    assert.deepEqual(sampleSequences(tokenizer, samples, length, perDomain), expected, `${length} × ${perDomain}`);
  }
  assert.ok(fromEveryText(pythonTokens - 1, 3).filter((s) => s.domain === "code").length === 3);
});

test("a missing text counts as empty", () => {
  const { python: _python, ...withoutPython } = samples;
  const code = sampleSequences(tokenizer, withoutPython, 64, 2).filter((s) => s.domain === "code");
  assert.deepEqual(
    code.map((s) => s.ids),
    [tokenizer.encode(samples.javascript).slice(0, 64), tokenizer.encode(samples.javascript).slice(64, 128)],
  );
});
