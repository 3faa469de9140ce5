// Tokens coloured by the expert their router ranks first in one layer, with
// the batch's top-k experts and gate weights on hover. With a selection bias (the
// loss-free checkpoint) experts are ranked by p + bias, as the model chose
// them; the gates shown stay the unbiased p.
import { html } from "htl";
import { biasedTopKRow, softmaxRow } from "../lib/routing.js";
import type { Tokenizer } from "../lib/model/tokenizer.js";
import type { LogitsBatch } from "../lib/types.js";

/** A stable, well-spread colour per expert (golden-angle hues). */
export const expertColor = (expert: number): string => `hsl(${(expert * 137.508) % 360} 70% 85%)`;

/** `batch`'s first sequence is `ids`; its top-k and selection bias rank the experts as the model chose them. */
export function tokenView(
  ids: readonly number[],
  batch: LogitsBatch,
  layer: number,
  tokenizer: Tokenizer,
): HTMLElement {
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
    return html`<span class="token" style=${`background:${expertColor(chosen[0])}`} title=${`"${text}" → top-1 expert ${chosen[0]}\n${detail}`} data-expert=${chosen[0]} data-token=${t}>${text}</span>`;
  });
  return html`<div class="tokens" data-testid="tokens">${spans}</div>`;
}
