// OLMoE-mini's router logits on its four fixed sample sequences, for each
// shipped checkpoint, in the CLI's JSON input format ({router_logits [L][T][E],
// top_k, sequence_lengths}). They were computed by PyTorch from the trained
// checkpoint when it was exported (data/models/<checkpoint>.reference.json,
// data/recipe/export.py). Node only (it reads data/): the olmoe-mini-logits
// and z-loss-forces data loaders share it.
import { existsSync, readFileSync } from "node:fs";
import { olmoeMini } from "../lib/model/olmoe-mini.js";

export interface ReferenceLogits {
  router_logits: number[][][];
  top_k: number;
  sequence_lengths: number[];
  /** The loss-free checkpoint routes with its expert bias; a framework's aux loss is computed on the plain top-k, as the CLI does. */
  strategy: string;
}

/** By checkpoint, in olmoe-mini.json's order; a checkpoint not exported yet is left out. */
export function referenceLogits(): Record<string, ReferenceLogits> {
  const out: Record<string, ReferenceLogits> = {};
  for (const name of olmoeMini.checkpoints) {
    const path = new URL(`../../data/models/${name}.reference.json`, import.meta.url);
    if (!existsSync(path)) continue;
    const reference = JSON.parse(readFileSync(path, "utf8"));
    out[name] = {
      router_logits: reference.router_logits,
      top_k: reference.config.top_k,
      sequence_lengths: reference.input_ids.map((ids: number[]) => ids.length),
      strategy: reference.strategy,
    };
  }
  return out;
}
