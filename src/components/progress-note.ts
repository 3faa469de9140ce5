import { html } from "htl";

/**
 * The line a section shows while OLMoE-mini works for it, so that a reader
 * never looks at an empty space: what is happening, and a progress bar.
 */
export function progressNote(message: string, fraction?: number): HTMLElement {
  return html`<p class="progress-note" data-testid="model-progress">${message}… ${fraction === undefined ? html`<progress></progress>` : html`<progress value=${Math.max(0, Math.min(1, fraction))} max="1"></progress>`}</p>` as HTMLElement;
}
