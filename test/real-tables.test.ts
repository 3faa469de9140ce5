// The tables of OLMoE-mini's real routing, rendered as HTML for the build's
// copy and for the pages' cells (src/components/real-tables.ts): the values
// they show are the library's, and text from outside (a checkpoint's name, a
// backend's error) cannot inject markup.
import { test } from "node:test";
import assert from "node:assert/strict";
import { granularityTable, zLossRow, zLossTable, escapeHtml } from "../src/components/real-tables.js";
import { syntheticBatch } from "../src/lib/synthetic.js";
import { summarize } from "../src/lib/summary.js";
import { lossRecord } from "../src/lib/losses/index.js";
import { stMoe, olmoe } from "../src/lib/losses/z-loss.js";

const batch = syntheticBatch({ layers: 2, experts: 8, domains: ["code", "prose"], tokensPerSequence: 16, seed: 3 });
const summary = summarize(batch.logits, 2, batch.sequenceLengths);
const cells = (html: string) => [...html.matchAll(/<td class="number"[^>]*>([^<]*)<\/td>/g)].map((m) => m[1]);

test("the z-loss table shows each row's losses, β·z at the trained β = 0.001, and the largest logit", () => {
  const html = zLossTable([zLossRow("global", summary, "onnxruntime-node")], "build");
  assert.deepEqual(cells(html), [
    stMoe(summary).toFixed(3),
    olmoe(summary).toFixed(3),
    (0.001 * olmoe(summary)).toExponential(2),
    (0.001 * stMoe(summary)).toExponential(2),
    summary.maxLogit.toFixed(2),
  ]);
  assert.match(html, /data-testid="real-z" data-source="build"/);
  assert.equal(Number(cells(html)[0]) / Number(cells(html)[1]), 2); // k = 2: the OLMoE form is ÷k
});

test("a checkpoint whose live run failed is a row with its error; names and errors are escaped", () => {
  const html = zLossTable(
    [{ checkpoint: "<img src=x onerror=alert(1)>", error: 'worker "crashed" & <b>stopped</b>' }],
    "live",
  );
  assert.ok(!html.includes("<img") && !html.includes("<b>"), html);
  assert.match(html, /&lt;img src=x onerror=alert\(1\)&gt;/);
  assert.match(html, /worker &quot;crashed&quot; &amp; &lt;b&gt;stopped&lt;\/b&gt;/);
  assert.equal(escapeHtml(`a'b`), "a&#39;b");
});

test("the granularity table shows the four LBLs of the library's record at the chosen micro-batch", () => {
  for (const m of [1, 2]) {
    const record = lossRecord(summary, m);
    const html = granularityTable(
      record,
      { checkpoint: "micro", domains: ["code", "prose"], sequenceLengths: summary.sequenceLengths },
      m,
      "build",
    );
    assert.deepEqual(
      cells(html).map(Number),
      [record.lbl.switch, record.lbl.sequence, record.lbl.micro_batch, record.lbl.global].map((v) =>
        Number(v.toFixed(4)),
      ),
    );
    assert.match(html, new RegExp(`m = ${m}\\)`));
    assert.match(html, /2 sequences \(1 code, 1 prose\)/);
  }
});
