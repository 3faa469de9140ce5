/**
 * The build-time copies of the pages' live tables, as HTML: the numbers
 * OLMoE-mini's checkpoints give on the sample batches, computed here with
 * onnxruntime-node and written into the built page by the markdown plugin
 * tools/build-copy-plugin.ts, so that they are on screen as soon as the HTML
 * is (no script, no data file, no KaTeX or Plot first). The pages' cells draw
 * the same tables with the same renderers (src/components/real-tables.ts)
 * and replace these when they run.
 *
 * Prints one JSON object, name → HTML; the plugin runs this once per build.
 */
import { lossRecord } from "../src/lib/losses/index.js";
import { summaryOfJson } from "../src/components/build-time.js";
import { granularityTable, zLossRow, zLossTable } from "../src/components/real-tables.js";
import { sideBySideHtml, sideCardHtml } from "../src/components/side-by-side.js";
import { summarizeBatch } from "../src/lib/summary.js";
import { routeForBuild } from "./sample-batches.js";

// The ablation's side-by-side opens on the first sample (Python), its first 120 tokens, layer 0.
const { batches, side } = await routeForBuild(new URL("../", import.meta.url), { sample: "python", tokens: 120 });
const checkpoints = Object.keys(batches);
const copies: Record<string, string> = {};
if (checkpoints.length) {
  copies["real-z"] = zLossTable(
    checkpoints.map((c) =>
      zLossRow(c, summaryOfJson(batches[c].perDomain2.summary), "onnxruntime-node, at build time"),
    ),
    "build",
  );
  // The granularity section opens on the first checkpoint and micro-batches of one sequence.
  const first = batches[checkpoints[0]].perDomain4;
  const summary = summaryOfJson(first.summary);
  copies["real-granularity"] = granularityTable(
    lossRecord(summary, 1),
    { checkpoint: checkpoints[0], domains: first.domains, sequenceLengths: summary.sequenceLengths },
    1,
    "build",
  );
}
if (side.batches.length)
  copies["side-by-side"] = sideBySideHtml(
    side.batches.map(({ checkpoint, batch }) =>
      sideCardHtml({ checkpoint, batch, record: lossRecord(summarizeBatch(batch), 1) }, side.ids, 0, side.tokenizer),
    ),
    "build",
    "python",
    0,
  );
process.stdout.write(JSON.stringify(copies));
