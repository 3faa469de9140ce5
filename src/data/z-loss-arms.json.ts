// Framework data loader: the trained runs (src/data/trained-runs.ts) that the
// z-loss page compares: the global-LBL arm with the OLMoE fork's z-loss (÷k),
// without the ÷k, and without a z-loss, every seed. A quarter of what the
// ablation page reads (0.3 of 1.2 MB), so the z-loss page downloads only
// what it draws.
import { trainedRuns } from "./trained-runs.js";

/** The arms the z-loss page's last section compares, in its order. */
const zLossArms = ["global", "global-z-no-divk", "global-no-z"];

const { runs } = trainedRuns();
process.stdout.write(JSON.stringify({ runs: runs.filter((r) => zLossArms.includes(r.arm)) }));
