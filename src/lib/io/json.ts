/**
 * JSON input, shaped like the cases of `worked-examples.json`:
 * `{ "router_logits": [L][T][E] (or [T][E]), "top_k", "sequence_lengths",
 * "micro_batch_sequences" }`; only `router_logits` is required here (the CLI
 * asks for `top_k` when neither the file nor an option gives it).
 */
import { LabInputError, decimalInteger } from "../types.js";
import { logitsFromTensor, type LogitsInput } from "./tensor.js";

export function readJson(text: string, name = "the JSON file"): LogitsInput {
  if (text.trim().length === 0) throw new LabInputError(`${name} is empty`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new LabInputError(`${name} is not valid JSON (${(error as Error).message})`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new LabInputError(`${name} must hold a JSON object with a "router_logits" field`);
  }
  const record = parsed as Record<string, unknown>;
  if (!("router_logits" in record)) throw new LabInputError(`${name} has no "router_logits" field`);
  const { shape, values } = flattenNumbers(record.router_logits, name);
  const { logits, sequenceLengths } = logitsFromTensor(shape, values, `"router_logits" in ${name}`);
  const input: { logits: typeof logits; topK?: number; sequenceLengths?: number[]; microBatchSequences?: number } = {
    logits,
  };
  if (record.top_k !== undefined) input.topK = integerField(record.top_k, "top_k", name);
  if (record.micro_batch_sequences !== undefined)
    input.microBatchSequences = integerField(record.micro_batch_sequences, "micro_batch_sequences", name);
  if (record.sequence_lengths !== undefined) {
    const lengths = record.sequence_lengths;
    if (!Array.isArray(lengths) || !lengths.every((n) => typeof n === "number" && Number.isInteger(n))) {
      throw new LabInputError(`"sequence_lengths" in ${name} must be a list of integers`);
    }
    input.sequenceLengths = lengths;
  } else if (sequenceLengths) input.sequenceLengths = sequenceLengths;
  return input;
}

function integerField(value: unknown, key: string, file: string): number {
  const n = typeof value === "number" ? decimalInteger(value) : null;
  if (n === null) throw new LabInputError(`"${key}" in ${file} must be an integer; got ${preview(value)}`);
  return n;
}

/** Checks that nested arrays are rectangular and numeric; returns shape and values. */
function flattenNumbers(value: unknown, file: string): { shape: number[]; values: Float64Array } {
  const shape: number[] = [];
  for (let level: unknown = value; Array.isArray(level); level = level[0]) {
    shape.push(level.length);
    // router logits have 2 to 4 dimensions: stop before a deep nesting can
    // exhaust the stack in the walk below
    if (shape.length > 4)
      throw new LabInputError(
        `"router_logits" in ${file} is nested more than 4 lists deep; expected [tokens][experts], [layers][tokens][experts] or [layers][batch][sequence][experts]`,
      );
    if (level.length === 0) break;
  }
  if (shape.length === 0) throw new LabInputError(`"router_logits" in ${file} must be a nested list of numbers`);
  const values = new Float64Array(shape.reduce((a, b) => a * b, 1));
  let at = 0;
  const walk = (node: unknown, depth: number, path: number[]): void => {
    if (depth === shape.length) {
      if (typeof node !== "number") {
        throw new LabInputError(
          `"router_logits" in ${file} holds ${preview(node)} at [${path.join("][")}]; every logit must be a number (NaN and Infinity are not JSON)`,
        );
      }
      values[at++] = node;
      return;
    }
    if (!Array.isArray(node) || node.length !== shape[depth]) {
      const got = Array.isArray(node) ? `${node.length} entries` : preview(node);
      throw new LabInputError(
        `"router_logits" in ${file} is ragged: [${path.join("][")}] has ${got}, expected ${shape[depth]} (as [${path.map(() => 0).join("][")}] has)`,
      );
    }
    for (let i = 0; i < node.length; i++) walk(node[i], depth + 1, [...path, i]);
  };
  walk(value, 0, []);
  return { shape, values };
}

/** A short description of a JSON value for a message; never walks a deep value. */
function preview(value: unknown): string {
  if (Array.isArray(value)) return `a list of ${value.length}`;
  if (value !== null && typeof value === "object") return "an object";
  return String(JSON.stringify(value)).slice(0, 60);
}
