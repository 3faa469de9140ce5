/**
 * Forced routes (issue 16): the playground's counterfactual (two forward
 * passes of one window), the routing-consistency comparison (three), and the
 * calibration sweep over the playground's default sample text (the same
 * options the page and its build-time copy use), on onnxruntime-web's WASM
 * (the browser's runtime, one thread, as on GitHub Pages) and on
 * onnxruntime-node. Medians of interleaved repeats.
 */
import { readFileSync, existsSync } from "node:fs";
import { performance } from "node:perf_hooks";
import * as ortNode from "onnxruntime-node";
import * as ortWeb from "onnxruntime-web";
import { olmoeMini } from "../src/lib/model/olmoe-mini.js";
import { overrideShapeOf } from "../src/lib/model/route-overrides.js";
import { sessionForward } from "../src/lib/model/session-forward.js";
import { Tokenizer } from "../src/lib/model/tokenizer.js";
import { readSampleFiles } from "../tools/sample-files.js";
import { forceOneExpert, rankedExperts, type Forward } from "../src/lib/model/counterfactual.js";
import { PLAYGROUND_CALIBRATION, calibrationSweep, calibrationTexts } from "../src/lib/model/calibration.js";
import { routingConsistency } from "../src/lib/model/consistency.js";
import type { BenchRow } from "./timing.js";

const root = new URL("../", import.meta.url);

async function medianOf(repeats: number, run: () => Promise<unknown>): Promise<number> {
  await run();
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const start = performance.now();
    await run();
    times.push(performance.now() - start);
  }
  return times.sort((a, b) => a - b)[Math.floor(times.length / 2)];
}

export async function benchCounterfactual(): Promise<BenchRow[]> {
  const suite = "forced routes";
  const checkpoint = olmoeMini.checkpoints[0];
  const path = new URL(`data/models/${checkpoint}.onnx`, root).pathname;
  if (!existsSync(path)) return [{ suite, case: "forced routes", value: NaN, unit: "", note: `${path} not exported` }];
  const tokenizer = new Tokenizer(JSON.parse(readFileSync(new URL("data/tokenizer.json", root), "utf8")));
  const samples = readSampleFiles(root);
  const window = tokenizer.encode(samples.python.slice(0, 900)).slice(0, olmoeMini.context);
  const shape = overrideShapeOf(olmoeMini);
  ortWeb.env.wasm.numThreads = 1;
  ortWeb.env.logLevel = "error";
  const forwards: [string, Forward][] = [
    [
      "onnxruntime-web (wasm, 1 thread)",
      sessionForward(
        ortWeb,
        await ortWeb.InferenceSession.create(readFileSync(path), {
          executionProviders: ["wasm"],
          graphOptimizationLevel: "all",
        }),
        shape,
      ),
    ],
    [
      "onnxruntime-node",
      sessionForward(
        ortNode,
        await ortNode.InferenceSession.create(path, { intraOpNumThreads: 1, logSeverityLevel: 3 }),
        shape,
      ),
    ],
  ];
  // the playground's sweep: its options and its five texts (src/data/calibration.json.ts, the live run)
  const options = { topK: olmoeMini.topK, ...PLAYGROUND_CALIBRATION };
  const { texts } = calibrationTexts((text) => tokenizer.encode(text), samples, options.tokens);
  const rows: BenchRow[] = [];
  for (const [runtime, forward] of forwards) {
    const plain = await forward([window]);
    const expert = rankedExperts(plain, 1, 12)[olmoeMini.topK];
    const counterfactual = await medianOf(5, async () =>
      forceOneExpert(forward, window, await forward([window]), olmoeMini.topK, 1, 12, 0, expert),
    );
    const consistency = await medianOf(3, () =>
      routingConsistency(forward, forward, [window], { kind: "bf16" }, olmoeMini.topK, shape.width),
    );
    let positions = 0;
    const sweep = await medianOf(1, async () => {
      positions = 0;
      for (const ids of texts)
        positions += (await calibrationSweep(forward, ids, await forward([ids]), options)).tokenPositions;
    });
    rows.push(
      {
        suite,
        case: `counterfactual, one token (${runtime})`,
        value: counterfactual,
        unit: "ms",
        note: `${window.length}-token window: the plain pass and the forced one, median of 5`,
      },
      {
        suite,
        case: `routing consistency, bf16 (${runtime})`,
        value: consistency,
        unit: "ms",
        note: "three passes: plain, perturbed, perturbed with the first route replayed",
      },
      {
        suite,
        case: `calibration sweep, the playground's texts (${runtime})`,
        value: sweep,
        unit: "ms",
        note: `${texts.length} texts × ${options.tokens} tokens × ${olmoeMini.layers} layers × ${options.topK + options.alternatives} swaps: ${texts.length * options.tokens} batched passes, ${positions} token positions, median of 1 after a warm-up`,
      },
    );
  }
  return rows;
}
