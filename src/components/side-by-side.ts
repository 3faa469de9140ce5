/**
 * The ablation page's "same text, routed by each checkpoint": one card per
 * checkpoint, as HTML strings, for the copy the build writes into the page
 * (tools/build-copies.ts) and for the cell that routes the text live, so the
 * two look the same and a browser test can compare them.
 */
import type { LogitsBatch } from "../lib/types.js";
import type { LossRecord } from "../lib/losses/index.js";
import { maxVioSamplingFloor } from "../lib/losses/max-vio.js";
import { escapeHtml } from "./real-tables.js";
import { tokenViewHtml, type TokenText } from "./token-view.js";

/** One checkpoint's routing of the sample, or the error that stopped it. */
export type SideResult =
  { checkpoint: string; batch: LogitsBatch; record: LossRecord } | { checkpoint: string; error: string };

export function sideCardHtml(result: SideResult, ids: readonly number[], layer: number, tokenizer: TokenText): string {
  const name = escapeHtml(result.checkpoint);
  if ("error" in result)
    return `<div class="card" data-checkpoint="${name}"><h3>${name}</h3><p class="warning">${escapeHtml(result.error)}</p></div>`;
  const { batch, record } = result;
  const floor = maxVioSamplingFloor(batch.logits.tokens, batch.topK, batch.logits.experts);
  return `<div class="card" data-checkpoint="${name}"><h3>${name}</h3><p>MaxVio on this text (${
    batch.logits.tokens
  } tokens; a uniform router reads ≈ ${floor.toFixed(2)} on so few) <span data-testid="side-max-vio">${record.max_vio.global.toFixed(
    2,
  )}</span>, lbl.switch <span data-testid="side-lbl">${record.lbl.switch.toFixed(3)}</span></p>${tokenViewHtml(
    ids,
    batch,
    layer,
    tokenizer,
  )}</div>`;
}

/** What the cards show: the build's routing (which the live run replaces) or the reader's own. */
export function sideNote(source: "build" | "live"): string {
  return `<p class="muted" elementtiming="real-numbers" data-testid="side-source">${
    source === "live"
      ? "Live: routed in your browser just now."
      : "Routed when this site was built (onnxruntime-node, on the same checkpoint files); when this section comes into view your browser routes the text live and replaces these cards."
  }</p>`;
}

/** The whole side-by-side: the note, then a grid of cards, marked with the sample and layer it shows. */
export function sideBySideHtml(
  cards: readonly string[],
  source: "build" | "live",
  sample: string,
  layer: number,
): string {
  return `${sideNote(source)}<div class="grid grid-cols-2" data-testid="side-by-side" data-source="${source}" data-sample="${escapeHtml(
    sample,
  )}" data-layer="${layer}">${cards.join("")}</div>`;
}
