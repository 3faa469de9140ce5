/**
 * Messages between the "your logits" page and its parsing worker. Every
 * request carries an id and every reply names the request it answers, so a
 * late reply about an earlier file (its header, its progress, its error) can
 * never be shown under a later file's name: the client drops replies to
 * requests that are no longer current, and the worker abandons a stream as
 * soon as a newer request arrives.
 */
import type { BiasReplay } from "../lib/loss-free.js";
import type { RoutingSummary } from "../lib/summary.js";

export type LogitsWorkerRequest =
  | { id: number; type: "inspect"; file: Blob; name: string }
  | {
      id: number;
      type: "summarize";
      topK: number;
      sequenceLengths: number[] | null;
      biasRate: number;
      biasBatchTokens: number;
    };

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

export type LogitsWorkerMessage = { id: number } & (
  | { type: "described"; file: FileDescription }
  | { type: "progress"; done: number; total: number }
  | { type: "summarized"; summary: RoutingSummary; replay: BiasReplay; ms: number }
  | { type: "error"; message: string }
);
