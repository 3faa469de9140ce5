// Framework data loader: the z-loss page's "pull on routing" table. For each
// shipped checkpoint's router logits on its four sample sequences
// (src/data/reference-logits.ts), the norm of the routing-relevant
// (row-centred) gradient of α·lbl.switch (α = 0.01) and of β·z (β = 0.001),
// with and without the OLMoE fork's ÷k, in the layer-mean form the recipe
// trains with; computed with the lab's own loss library when the site is
// built, so that the page downloads four rows instead of 2 MB of logits.
import { referenceLogits } from "./reference-logits.js";
import { readLogits } from "../lib/io/read.js";
import { lossGradient } from "../lib/losses/gradients.js";
import { centeredNorm } from "../lib/losses/routing-force.js";
import { computeLosses } from "../lib/losses/index.js";

const alpha = 0.01;
const beta = 0.001;

const rows = Object.entries(referenceLogits()).map(([checkpoint, entry]) => {
  // Read as the CLI and the pages read a reader's file: the same validation and layout.
  const { logits } = readLogits(new TextEncoder().encode(JSON.stringify(entry)), `${checkpoint}.json`);
  const options = { topK: entry.top_k, sequenceLengths: entry.sequence_lengths };
  const lbl = alpha * centeredNorm(lossGradient(logits, "lbl.switch", options), logits);
  const z = beta * centeredNorm(lossGradient(logits, "z_loss.st_moe", options), logits);
  const zk = beta * centeredNorm(lossGradient(logits, "z_loss.olmoe", options), logits);
  return {
    checkpoint,
    lbl,
    z,
    zk,
    zOverLbl: z / lbl,
    zkOverLbl: zk / lbl,
    rmsLse: Math.sqrt(computeLosses(logits, options.topK, options.sequenceLengths).z_loss.st_moe),
    floor: Math.log(logits.experts),
  };
});
process.stdout.write(JSON.stringify(rows));
