/**
 * Messages between the "your logits" page and its parsing worker. Every
 * request carries an id and every reply names the request it answers, so a
 * late reply about an earlier file (its header, its progress, its error) can
 * never be shown under a later file's name: the client drops replies to
 * requests that are no longer current, and the worker abandons a stream as
 * soon as a newer request arrives.
 */
import type { BiasReplay } from "../lib/loss-free.js";
import type { LayerRange, RoutingSummary } from "../lib/summary.js";
import type { RoutingConvention } from "../lib/conventions.js";
import type { RoutingRequest } from "../lib/routing-options.js";
import type { AuxMapLayer } from "../lib/aux-map.js";

export type LogitsWorkerRequest =
  | { id: number; type: "inspect"; file: Blob; name: string }
  /** Stop whatever is under way (a stream stops at its next chunk); no reply. */
  | { id: number; type: "cancel" }
  | {
      id: number;
      type: "summarize";
      topK: number;
      sequenceLengths: number[] | null;
      biasRate: number;
      biasBatchTokens: number;
      /** A routing convention (a preset or explicit fields); empty: the lab's softmax router. */
      routing: RoutingRequest;
      /** An expert bias as JSON text (E numbers, or an array of E per layer), for the choice only; null: none. */
      biasJson: string | null;
      /** Route without the expert bias the file carries (the CLI's --ignore-file-bias). */
      ignoreFileBias: boolean;
      /** Only these layers (a shard; another worker reads the others); absent: every layer. */
      layers?: LayerRange;
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
  /** The tensors of the expert bias the file carries; absent: none. */
  biasSource?: string;
  /** Read whole when its header was read (JSON, Fortran order): one worker holds it, so it is not sharded. */
  whole: boolean;
}

export type LogitsWorkerMessage = { id: number } & (
  | { type: "described"; file: FileDescription }
  | { type: "progress"; done: number; total: number }
  | {
      type: "summarized";
      summary: RoutingSummary;
      /** The loss-free replay; null when a convention or a bias routed the file (the replay is the lab's softmax router's). */
      replay: BiasReplay | null;
      /** The convention the file was routed by; null: the lab's softmax router. */
      routing: RoutingConvention | null;
      /** With a convention or bias: per layer, the dispatched route against the map an aux loss counts; else null. Only the request's layers when it named them. */
      auxMap: AuxMapLayer[] | null;
      /** Sigmoid asked of rows that sum to 1, and the like: the numbers stand, with this said beside them. */
      warning: string | null;
      ms: number;
    }
  | { type: "error"; message: string }
);
