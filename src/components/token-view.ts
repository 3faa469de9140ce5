// Tokens coloured by the expert their router ranks first in one layer, with
// the batch's top-k experts and gate weights on hover. With a selection bias (the
// loss-free checkpoint) experts are ranked by p + bias, as the model chose
// them; the gates shown stay the unbiased p.
//
// Rendered as an HTML string (no DOM), so that the build can write the
// ablation's side-by-side into the page (tools/build-copies.ts) with the same
// code the page runs; `tokenView` parses it into an element for the cells.
import { biasedTopKRow, softmaxRow } from "../lib/routing.js";
import type { Tokenizer } from "../lib/model/tokenizer.js";
import type { LogitsBatch } from "../lib/types.js";
import { escapeHtml } from "./real-tables.js";
import { fromHtml } from "./build-time.js";

/** A stable, well-spread colour per expert (golden-angle hues). */
export const expertColor = (expert: number): string => `hsl(${(expert * 137.508) % 360} 70% 85%)`;

/** The tokenizer's one job here: a token's text. */
export type TokenText = Pick<Tokenizer, "tokenText">;

/** `batch`'s first sequence is `ids`; its top-k and selection bias rank the experts as the model chose them. */
export function tokenViewHtml(ids: readonly number[], batch: LogitsBatch, layer: number, tokenizer: TokenText): string {
  const { logits, topK, selectionBias } = batch;
  const E = logits.experts,
    T = logits.tokens;
  const p = new Float64Array(E),
    scores = new Float64Array(E),
    chosen = new Int32Array(topK);
  const spans = ids.map((id, t) => {
    softmaxRow(logits.data, (layer * T + t) * E, E, p);
    biasedTopKRow(p, selectionBias, layer * E, E, topK, scores, chosen);
    const detail = Array.from(chosen, (e) => `expert ${e}: gate ${p[e].toFixed(3)}`).join("\n");
    const text = tokenizer.tokenText(id);
    const title = `"${text}" → top-1 expert ${chosen[0]}\n${detail}`;
    return `<span class="token" style="background:${expertColor(chosen[0])}" title="${escapeHtml(title)}" data-expert="${chosen[0]}" data-token="${t}">${escapeHtml(text)}</span>`;
  });
  return `<div class="tokens" data-testid="tokens">${spans.join("")}</div>`;
}

export function tokenView(
  ids: readonly number[],
  batch: LogitsBatch,
  layer: number,
  tokenizer: TokenText,
): HTMLElement {
  return fromHtml(tokenViewHtml(ids, batch, layer, tokenizer)).firstElementChild as HTMLElement;
}
