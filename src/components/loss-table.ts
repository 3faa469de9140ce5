// The table of every loss in the record, with a note per row, shared by the
// playground (OLMoE-mini on your text) and "Your router logits" (your file):
// one list of names, one place for the notes, MaxVio always with its token
// count and the floor a uniform router would read on that many tokens.
import { html } from "htl";
import type { LossRecord } from "../lib/losses/index.js";
import { maxVioSamplingFloor } from "../lib/losses/max-vio.js";

export interface LossTableContext {
  topK: number;
  experts: number;
  tokens: number;
  /** Sequences per micro-batch, and what a sequence is called here ("window", "sequence"). */
  microBatch: number;
  unit: string;
}

export interface LossRow {
  name: string;
  value: number;
  note: string;
}

export function lossRows(record: LossRecord, c: LossTableContext): LossRow[] {
  const floor = maxVioSamplingFloor(c.tokens, c.topK, c.experts);
  const onTokens = `on ${c.tokens.toLocaleString("en")} tokens, where a uniform router reads ≈ ${floor.toFixed(floor < 0.1 ? 3 : 2)} by chance; total collapse: ${(c.experts / c.topK - 1).toFixed(2)}`;
  return [
    { name: "lbl.switch", value: record.lbl.switch, note: "Switch / Megatron / MegaBlocks per layer; balance reads 1" },
    { name: "lbl.hf", value: record.lbl.hf, note: `Hugging Face, pooled layers, token fractions; balance reads k = ${c.topK}` },
    { name: "lbl.sequence", value: record.lbl.sequence, note: `per ${c.unit}` },
    { name: "lbl.micro_batch", value: record.lbl.micro_batch, note: `micro-batches of ${c.microBatch} ${c.unit}${c.microBatch === 1 ? "" : "s"}` },
    { name: "lbl.global", value: record.lbl.global, note: "f over the whole batch, P per micro-batch" },
    { name: "z_loss.st_moe", value: record.z_loss.st_moe, note: "mean lse², ÷ layers·tokens" },
    { name: "z_loss.olmoe", value: record.z_loss.olmoe, note: "÷ layers·tokens·k (the OLMoE fork of MegaBlocks)" },
    { name: "cv2.importance", value: record.cv2.importance, note: "population variance" },
    { name: "cv2.load", value: record.cv2.load, note: "population variance" },
    { name: "max_vio.global", value: record.max_vio.global, note: onTokens },
    { name: "max_vio.micro_batch", value: record.max_vio.micro_batch, note: `inside micro-batches of ${c.microBatch} ${c.unit}${c.microBatch === 1 ? "" : "s"}` },
  ];
}

/** The rows as a table; each value cell carries `data-testid="<prefix><name>"`. */
export function lossTable(record: LossRecord, c: LossTableContext, options: { testid: string; cellPrefix: string; digits: number }): HTMLElement {
  return html`<table data-testid=${options.testid}><tr><th>quantity</th><th>value</th><th>note</th></tr>${lossRows(record, c).map(
    (r) => html`<tr><td><code>${r.name}</code></td><td data-testid=${`${options.cellPrefix}${r.name}`}>${r.value.toFixed(options.digits)}</td><td>${r.note}</td></tr>`,
  )}</table>` as HTMLElement;
}
