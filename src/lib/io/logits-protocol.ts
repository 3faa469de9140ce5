/** Messages between the "your logits" page and its parsing worker. */
import type { BiasReplay } from "../loss-free.js";
import type { RoutingSummary } from "../summary.js";

export type LogitsWorkerRequest =
  | { type: "inspect"; file: Blob; name: string }
  | { type: "summarize"; topK: number; sequenceLengths: number[] | null; biasRate: number; biasBatchTokens: number };

export interface FileDescription {
  name: string;
  bytes: number;
  format: string;
  dtype: string;
  layers: number;
  tokens: number;
  experts: number;
  topK?: number;
  sequenceLengths?: number[];
  microBatchSequences?: number;
}

export type LogitsWorkerMessage =
  | { type: "described"; file: FileDescription }
  | { type: "progress"; done: number; total: number }
  | { type: "summarized"; summary: RoutingSummary; replay: BiasReplay; ms: number }
  | { type: "error"; message: string };
