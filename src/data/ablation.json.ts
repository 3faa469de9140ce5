// Framework data loader: every trained OLMoE-mini run (src/data/trained-runs.ts)
// for the ablation page, and the shipped checkpoints' full held-out metrics
// for its heatmaps.
import { trainedRuns } from "./trained-runs.js";

process.stdout.write(JSON.stringify(trainedRuns()));
