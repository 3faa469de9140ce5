/**
 * The live-training page's worker: trains one MoE layer (src/lib/moe-layer.ts)
 * and reports the new steps every `reportEveryMs`. A page that changes its
 * settings ends this worker and starts another.
 */
import { initialParameters, makeTask, stepBuffers, trainStep, type StepMetrics } from "../lib/moe-layer.js";
import type { TrainMessage, TrainRequest } from "./train-protocol.js";

const post = (message: TrainMessage) => (self as unknown as Worker).postMessage(message);

self.onmessage = (event: MessageEvent<TrainRequest>) => {
  const { config, steps, reportEveryMs } = event.data;
  try {
    const task = makeTask(config);
    const params = initialParameters(config);
    const buffers = stepBuffers(config);
    let pending: StepMetrics[] = [];
    let trainingMs = 0;
    let reported = performance.now();
    for (let step = 0; step < steps; step++) {
      const started = performance.now();
      pending.push(trainStep(config, params, task, step, buffers));
      const now = performance.now();
      trainingMs += now - started;
      if (step === steps - 1 || now - reported >= reportEveryMs) {
        post({ type: "steps", metrics: pending, done: step === steps - 1, trainingMs });
        pending = [];
        reported = now;
      }
    }
  } catch (error) {
    post({ type: "error", message: error instanceof Error ? error.message : String(error) });
  }
};
