/**
 * Per-document held-out NLL for the four shipped checkpoints, whose training
 * states predate evaluate.py's `per_document` output (their float32 weights
 * were not kept; the ONNX files in data/models are what the lab ships).
 *
 * Runs each shipped ONNX file (float16 experts and attention, int8 LM head)
 * with onnxruntime-node over the same held-out windows evaluate.py uses (256
 * tokens, non-overlapping) and writes into data/metrics/<run>.json:
 *   per_document          { nll, tokens, domain } as evaluate.py writes it
 *   per_document_source   "onnx": these NLLs come from the shipped export, so
 *                         the lab uses them for the *width* of a run's
 *                         bootstrap interval only, scaled to its PyTorch perplexity
 *   per_document_perplexity  the export's own perplexity per domain
 * Runs that already have `per_document` (every campaign arm) are left alone.
 *
 * usage: node --import tsx data/recipe/heldout-onnx.ts [micro global loss-free none]
 */
import { readFileSync, writeFileSync, renameSync, existsSync } from "node:fs";
import * as ort from "onnxruntime-node";
import { olmoeMini } from "../../src/lib/model/olmoe-mini.js";
import { forwardFeeds, overrideShapeOf } from "../../src/lib/model/route-overrides.js";

const WINDOW = olmoeMini.context;
const root = new URL("../", import.meta.url);
const runs = process.argv.slice(2).length ? process.argv.slice(2) : olmoeMini.checkpoints;
const held = new Uint16Array(readFileSync(new URL("corpus/heldout.tokens.u16", root)).buffer.slice(0));
const domains = new Uint8Array(readFileSync(new URL("corpus/heldout.domains.u8", root)));
const endOfText = (JSON.parse(readFileSync(new URL("tokenizer.json", root), "utf8")) as { endOfText: number })
  .endOfText;

// document of each position: end-of-text closes the document it ends (evaluate.py does the same)
const documentOf = new Int32Array(held.length);
for (let i = 1; i < held.length; i++) documentOf[i] = documentOf[i - 1] + (held[i - 1] === endOfText ? 1 : 0);
const documents = documentOf[held.length - 1] + 1;
const documentDomain = new Int32Array(documents);
for (let i = 0; i < held.length; i++) documentDomain[documentOf[i]] = domains[i];

for (const run of runs) {
  const metricsPath = new URL(`metrics/${run}.json`, root);
  const modelPath = new URL(`models/${run}.onnx`, root);
  if (!existsSync(metricsPath) || !existsSync(modelPath)) {
    console.error(`${run}: no metrics or no ONNX file, skipped`);
    continue;
  }
  const metrics = JSON.parse(readFileSync(metricsPath, "utf8"));
  if (metrics.per_document && metrics.per_document_source !== "onnx") {
    console.error(`${run}: already has per-document NLL from PyTorch, left alone`);
    continue;
  }
  const session = await ort.InferenceSession.create(modelPath.pathname, { intraOpNumThreads: 1 });
  const nll = new Float64Array(documents);
  const tokens = new Int32Array(documents);
  const starts: number[] = [];
  for (let s = 0; s < held.length - WINDOW - 1; s += WINDOW) starts.push(s);
  const batch = 16;
  for (let b = 0; b < starts.length; b += batch) {
    const chunk = starts.slice(b, b + batch);
    const ids = new Int32Array(chunk.length * WINDOW);
    chunk.forEach((s, r) => ids.set(held.subarray(s, s + WINDOW), r * WINDOW));
    const out = await session.run(
      forwardFeeds(ort.Tensor, session.inputNames, overrideShapeOf(olmoeMini), ids, chunk.length, WINDOW),
    );
    const logits = out.logits.data as Float32Array;
    const vocab = out.logits.dims[2];
    chunk.forEach((s, r) => {
      for (let j = 0; j < WINDOW; j++) {
        const row = (r * WINDOW + j) * vocab;
        let max = -Infinity;
        for (let v = 0; v < vocab; v++) max = Math.max(max, logits[row + v]);
        let sum = 0;
        for (let v = 0; v < vocab; v++) sum += Math.exp(logits[row + v] - max);
        const target = held[s + j + 1];
        const document = documentOf[s + j + 1];
        nll[document] += max + Math.log(sum) - logits[row + target];
        tokens[document] += 1;
      }
    });
  }
  const kept = [...tokens.keys()].filter((d) => tokens[d] > 0);
  const perplexity = (domain: number) => {
    const picked = kept.filter((d) => documentDomain[d] === domain);
    return Math.exp(picked.reduce((a, d) => a + nll[d], 0) / picked.reduce((a, d) => a + tokens[d], 0));
  };
  metrics.per_document = {
    nll: kept.map((d) => Math.round(nll[d] * 1e4) / 1e4),
    tokens: kept.map((d) => tokens[d]),
    domain: kept.map((d) => documentDomain[d]),
  };
  metrics.per_document_source = "onnx";
  metrics.per_document_perplexity = { code: perplexity(0), prose: perplexity(1) };
  writeFileSync(`${metricsPath.pathname}.tmp`, JSON.stringify(metrics));
  renameSync(`${metricsPath.pathname}.tmp`, metricsPath.pathname);
  console.log(
    `${run}: export perplexity code ${perplexity(0).toFixed(2)} (PyTorch ${metrics.perplexity.code.toFixed(2)}), prose ${perplexity(1).toFixed(2)} (PyTorch ${metrics.perplexity.prose.toFixed(2)})`,
  );
}
