// The table of every loss in the record, with a note per row, shared by the
// playground (OLMoE-mini on your text) and "Your router logits" (your file):
// one list of names, one place for the notes, MaxVio always with its token
// count and the floor a uniform router would read on that many tokens.
import { html } from "htl";
import { lossName, type LossDescriptor, type NoteContext } from "../lib/losses/descriptor.js";
import { lossByName, type LossRecord } from "../lib/losses/index.js";
import { lossDescriptors } from "../lib/losses/registry.js";

export type LossTableContext = NoteContext;

export interface LossRow {
  name: string;
  value: number;
  note: string;
  units: string;
  /** TeX. */
  formula: string;
}

/** One row per descriptor, in registry order; the notes come from the descriptors. */
export function lossRows(
  record: LossRecord,
  c: LossTableContext,
  descriptors: readonly LossDescriptor[] = lossDescriptors,
): LossRow[] {
  return descriptors.map((d) => ({
    name: lossName(d),
    value: lossByName(record, lossName(d)),
    note: d.note(c),
    units: d.units,
    formula: d.formula,
  }));
}

/** The rows as a table; each value cell carries `data-testid="<prefix><name>"`, each name its units as a tooltip. */
export function lossTable(
  record: LossRecord,
  c: LossTableContext,
  options: { testid: string; cellPrefix: string; digits: number; descriptors?: readonly LossDescriptor[] },
): HTMLElement {
  return html`<table data-testid=${options.testid}><tr><th>quantity</th><th>value</th><th>note</th></tr>${lossRows(
    record,
    c,
    options.descriptors,
  ).map(
    (r) =>
      html`<tr><td title=${r.units}><code>${r.name}</code></td><td data-testid=${`${options.cellPrefix}${r.name}`}>${r.value.toFixed(options.digits)}</td><td>${r.note}</td></tr>`,
  )}</table>` as HTMLElement;
}
