// Framework data loader: the router-calibration sweep (src/lib/model/calibration.ts)
// of each checkpoint over the first tokens of each sample text, run here at
// build time by onnxruntime-node on the same full graphs the playground's
// "Recompute live" runs in the reader's browser (same code, same texts), so
// the section paints at once. The texts go along, so the live run sweeps
// exactly these tokens.
import { existsSync, readFileSync } from "node:fs";
import * as ort from "onnxruntime-node";
import { overrideShapeOf } from "../lib/model/route-overrides.js";
import { sessionForward } from "../lib/model/session-forward.js";
import { olmoeMini } from "../lib/model/olmoe-mini.js";
import { Tokenizer } from "../lib/model/tokenizer.js";
import { readSampleFiles } from "../../tools/sample-files.js";
import {
  PLAYGROUND_CALIBRATION,
  calibrationSweep,
  calibrationTexts,
  mergeCalibration,
  summarizeCalibration,
  swapsOf,
} from "../lib/model/calibration.js";

const root = new URL("../../", import.meta.url);
const tokenizer = new Tokenizer(JSON.parse(readFileSync(new URL("data/tokenizer.json", root), "utf8")));
const samples = readSampleFiles(root);

/** 5 texts × 16 tokens × 3 layers = 240 cells per checkpoint. */
const options = { topK: olmoeMini.topK, ...PLAYGROUND_CALIBRATION };
const { names, texts } = calibrationTexts((text) => tokenizer.encode(text), samples, options.tokens);

const checkpoints = [];
for (const checkpoint of olmoeMini.checkpoints) {
  const path = new URL(`data/models/${checkpoint}.onnx`, root);
  if (!existsSync(path)) continue;
  const session = await ort.InferenceSession.create(path.pathname, { logSeverityLevel: 3 });
  if (!session.inputNames.includes("forced_experts")) continue; // a graph exported before the route overrides
  const forward = sessionForward(ort, session, overrideShapeOf(olmoeMini));
  const results = [];
  for (const ids of texts) results.push(await calibrationSweep(forward, ids, await forward([ids]), options));
  checkpoints.push({ checkpoint, summary: summarizeCalibration(mergeCalibration(results)) });
  await session.release();
}

process.stdout.write(
  JSON.stringify({
    options,
    swaps: swapsOf(options.topK, options.alternatives),
    texts,
    textNames: names,
    checkpoints,
  }),
);
