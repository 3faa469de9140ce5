/** The loss record as CSV: one `quantity,value` line per descriptor, loads as `load[layer][expert]`. */
import { lossName, type LossDescriptor } from "../losses/descriptor.js";
import { lossByName, type LossRecord } from "../losses/index.js";
import { lossDescriptors } from "../losses/registry.js";

export function recordToCsv(record: LossRecord, descriptors: readonly LossDescriptor[] = lossDescriptors): string {
  const lines = ["quantity,value"];
  for (const d of descriptors) lines.push(`${lossName(d)},${lossByName(record, lossName(d))}`);
  record.load.forEach((row, l) => row.forEach((c, e) => lines.push(`load[${l}][${e}],${c}`)));
  return lines.join("\n") + "\n";
}
