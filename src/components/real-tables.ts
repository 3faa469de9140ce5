/**
 * The tables of OLMoE-mini's real routing on the z-loss and granularity pages,
 * as HTML strings: one renderer for the copy the build writes into the page
 * (tools/build-copies.ts, shown before any script runs) and for the cells
 * that replace it with the live run's numbers, so that the two look the same
 * and a browser test can compare them cell by cell. No DOM here: Node renders
 * these at build time. `elementtiming` lets the bench read when the numbers
 * were first painted (the Element Timing API).
 */
import type { RoutingSummary } from "../lib/summary.js";
import { stMoe, olmoe } from "../lib/losses/z-loss.js";
import type { LossRecord } from "../lib/losses/index.js";
import { backendName } from "./backend-preference.js";

/** Where a table's numbers come from: computed when the site was built, or just now in the browser. */
export type NumbersSource = "build" | "live";

const escapes: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
/** Text made safe for HTML (a checkpoint's name, a backend's fallback reason). */
export const escapeHtml = (text: string): string => text.replace(/[&<>"']/g, (c) => escapes[c]);

/** One checkpoint's row of the z-loss table, or the error that stopped its live run. */
export type ZLossRow =
  | {
      checkpoint: string;
      stMoe: number;
      olmoe: number;
      maxLogit: number;
      backend: string;
    }
  | { checkpoint: string; error: string };

/** β = 0.001 as OLMoE-mini was trained (OLMoE's normalisation, ÷k). */
const trainedBeta = 0.001;

export function zLossRow(checkpoint: string, summary: RoutingSummary, backend: string): ZLossRow {
  return { checkpoint, stMoe: stMoe(summary), olmoe: olmoe(summary), maxLogit: summary.maxLogit, backend };
}

export function zLossTable(rows: readonly ZLossRow[], source: NumbersSource): string {
  const header = [
    "checkpoint",
    "z_loss.st_moe",
    "z_loss.olmoe",
    "β·z as trained (OLMoE)",
    "same β in ST-MoE units",
    "largest logit",
    "backend",
  ];
  const body = rows.map((row) =>
    "error" in row
      ? `<tr><td>${escapeHtml(row.checkpoint)}</td><td colspan="6" class="warning">${escapeHtml(row.error)}</td></tr>`
      : `<tr><td>${escapeHtml(row.checkpoint)}</td>${[
          row.stMoe.toFixed(3),
          row.olmoe.toFixed(3),
          (trainedBeta * row.olmoe).toExponential(2),
          (trainedBeta * row.stMoe).toExponential(2),
          row.maxLogit.toFixed(2),
        ]
          .map((v) => `<td class="number">${v}</td>`)
          .join("")}<td>${escapeHtml(row.backend)}</td></tr>`,
  );
  const note =
    source === "live"
      ? "Live: routed in your browser just now."
      : "Computed when this site was built; the live run replaces these numbers.";
  return `<div data-testid="real-z" data-source="${source}"><p class="muted" elementtiming="real-numbers">${note}</p><table><thead><tr>${header
    .map((h, i) => (i > 0 && i < 6 ? `<th class="number">${h}</th>` : `<th>${h}</th>`))
    .join("")}</tr></thead><tbody>${body.join("")}</tbody></table></div>`;
}

/** What the granularity table says about the batch it summarises. */
export interface GranularityBatch {
  checkpoint: string;
  domains: readonly string[];
  sequenceLengths: readonly number[];
  /** The live run's backend and time; absent for the build-time copy. */
  backend?: string;
  fallbackReason?: string;
  ms?: number;
}

export function granularityTable(
  record: LossRecord,
  batch: GranularityBatch,
  microBatch: number,
  source: NumbersSource,
): string {
  const count = (domain: string) => batch.domains.filter((d) => d === domain).length;
  const where =
    source === "live"
      ? `<strong data-testid="real-source">live</strong> in your browser on ${backendName(batch.backend)}${
          batch.fallbackReason ? ` (${escapeHtml(batch.fallbackReason)})` : ""
        } in ${(batch.ms ?? NaN).toFixed(0)} ms`
      : `<strong data-testid="real-source">when this site was built</strong> (onnxruntime-node, on the same file; the live run replaces these numbers)`;
  const rows = [
    ["<code>lbl.switch</code>", "real-switch", record.lbl.switch],
    ["<code>lbl.sequence</code>", "real-sequence", record.lbl.sequence],
    [`<code>lbl.micro_batch</code> (m = ${microBatch})`, "real-micro", record.lbl.micro_batch],
    ["<code>lbl.global</code>", "real-global", record.lbl.global],
  ] as const;
  return `<div data-testid="real-granularity" data-source="${source}"><table><thead><tr><th>granularity</th><th class="number">LBL</th></tr></thead><tbody>${rows
    .map(
      ([name, id, value]) => `<tr><td>${name}</td><td class="number" data-testid="${id}">${value.toFixed(4)}</td></tr>`,
    )
    .join(
      "",
    )}</tbody></table><p elementtiming="real-numbers">${batch.sequenceLengths.length} sequences (${count("code")} code, ${count(
    "prose",
  )} prose) routed by <strong>${escapeHtml(batch.checkpoint)}</strong> ${where}. MaxVio over the batch ${record.max_vio.global.toFixed(
    3,
  )}, inside micro-batches ${record.max_vio.micro_batch.toFixed(3)}.</p></div>`;
}
