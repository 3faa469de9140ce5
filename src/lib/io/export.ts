/** The loss record as CSV: one `quantity,value` line per number, loads as `load[layer][expert]`. */
import type { LossRecord } from "../losses/index.js";

export function recordToCsv(record: LossRecord): string {
  const lines = ["quantity,value"];
  for (const family of ["lbl", "z_loss", "cv2", "max_vio"] as const) {
    for (const [key, value] of Object.entries(record[family])) lines.push(`${family}.${key},${value}`);
  }
  record.load.forEach((row, l) => row.forEach((c, e) => lines.push(`load[${l}][${e}],${c}`)));
  return lines.join("\n") + "\n";
}
