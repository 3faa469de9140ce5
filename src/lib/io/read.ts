/**
 * Picks the reader by file name and checks the bytes agree with it, so that a
 * JSON file named `.npy` is refused with a sentence that says what it is.
 */
import { LabInputError } from "../types.js";
import { readJson } from "./json.js";
import { isNpy, readNpy } from "./npy.js";
import { looksLikeSafetensors, readSafetensors } from "./safetensors.js";
import type { LogitsInput } from "./tensor.js";

export type LogitsFormat = "json" | "npy" | "safetensors";

export const supportedFormats =
  "JSON (.json), NumPy (.npy: float16/32/64) and safetensors (.safetensors: F16, BF16, F32, F64)";

export function formatOfName(name: string): LogitsFormat | undefined {
  const lower = name.toLowerCase();
  if (lower.endsWith(".json")) return "json";
  if (lower.endsWith(".npy")) return "npy";
  if (lower.endsWith(".safetensors")) return "safetensors";
  return undefined;
}

/** What the first bytes look like, whatever the name says. */
export function sniffFormat(bytes: Uint8Array): LogitsFormat | undefined {
  if (isNpy(bytes)) return "npy";
  if (looksLikeSafetensors(bytes)) return "safetensors";
  let i = 0;
  while (
    i < bytes.length &&
    (bytes[i] === 0x20 ||
      bytes[i] === 0x0a ||
      bytes[i] === 0x0d ||
      bytes[i] === 0x09 ||
      bytes[i] === 0xef ||
      bytes[i] === 0xbb ||
      bytes[i] === 0xbf)
  )
    i++;
  if (bytes[i] === 0x7b) return "json";
  return undefined;
}

/** The format to read `name` as, refusing a file whose first bytes contradict its name. */
export function checkedFormat(head: Uint8Array, name: string): LogitsFormat {
  const named = formatOfName(name);
  const sniffed = sniffFormat(head);
  const format = named ?? sniffed;
  if (!format) throw new LabInputError(`cannot tell what ${name} holds; readable formats: ${supportedFormats}`);
  if (named && sniffed && named !== sniffed) {
    throw new LabInputError(
      `${name} is named .${named} but its contents look like ${sniffed}; rename it or check the file`,
    );
  }
  return format;
}

export function readLogits(bytes: Uint8Array, name: string): LogitsInput {
  if (bytes.length === 0) throw new LabInputError(`${name} is empty`);
  const format = checkedFormat(bytes, name);
  switch (format) {
    case "npy":
      return readNpy(bytes, name);
    case "safetensors":
      return readSafetensors(bytes, name);
    case "json":
      return readJson(new TextDecoder("utf-8").decode(bytes), name);
  }
}
