/**
 * Messages between the live-training page and its training worker: the page
 * sends one configuration; the worker trains and sends the new steps' metrics
 * in batches, so the page draws a few times a second while training runs on
 * its own thread at the speed of its code.
 */
import type { LayerConfig, StepMetrics } from "../lib/moe-layer.js";

export interface TrainRequest {
  config: LayerConfig;
  steps: number;
  /** How often the worker reports, in ms (the page redraws on each report). */
  reportEveryMs: number;
}

export type TrainMessage =
  | {
      type: "steps";
      /** The steps trained since the last report, in order. */
      metrics: StepMetrics[];
      done: boolean;
      /** Time spent training so far, in ms (reports excluded). */
      trainingMs: number;
    }
  | { type: "error"; message: string };
