/**
 * Shapes shared by the whole library.
 *
 * Router logits travel as one flat typed array in row-major order
 * `layers × tokens × experts`, with the shape beside it: never nested JS
 * arrays in hot paths. Float64 input is accepted too, so that tests can
 * compare against float64 reference values and finite differences.
 */
export type FloatArray = Float32Array | Float64Array;

/** Router logits `x[l][t][e]`, flat, row-major: layers × tokens × experts. */
export interface RouterLogits {
  readonly data: FloatArray;
  readonly layers: number;
  readonly tokens: number;
  readonly experts: number;
}

/** Everything a loss needs to know about a batch besides the logits. */
export interface BatchLayout {
  /** Tokens per sequence, in order; they sum to `tokens`. */
  readonly sequenceLengths: readonly number[];
  /** Experts chosen per token. */
  readonly topK: number;
}

/**
 * A batch of router logits with everything its routing needs: where the
 * sequences end, how many experts each token picks, and the bias that chose
 * them. It travels in one piece from a reader or the model to the summary
 * (`summarizeBatch`), so no page passes top-k or the bias by hand.
 */
export interface LogitsBatch extends BatchLayout {
  readonly logits: RouterLogits;
  /**
   * Loss-free routing's expert bias, layers × experts: added to the scores
   * only to choose the top-k. Absent: plain top-k.
   */
  readonly selectionBias?: ArrayLike<number>;
}

/**
 * A problem with the input that a user can fix: the message names it in
 * plain words ("layer 2 has 63 experts, layer 0 has 64"), so that the CLI
 * prints one line and a page shows one sentence, never a stack trace.
 */
export class LabInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "LabInputError";
  }
}

/** Builds `RouterLogits` from nested arrays `[L][T][E]` (tests, small JSON inputs). */
export function logitsFromNested(
  nested: readonly (readonly (readonly number[])[])[],
  precision: "float32" | "float64" = "float64",
): RouterLogits {
  const layers = nested.length;
  const tokens = layers ? nested[0].length : 0;
  const experts = tokens ? nested[0][0].length : 0;
  const data =
    precision === "float32" ? new Float32Array(layers * tokens * experts) : new Float64Array(layers * tokens * experts);
  let i = 0;
  for (const layer of nested) for (const row of layer) for (const value of row) data[i++] = value;
  return { data, layers, tokens, experts };
}

/**
 * A count given in a file or on a command line, read strictly: a JSON number
 * that is a safe integer, or a string of decimal digits. Everything else
 * (`true`, `[3]`, `"0x2"`, `"2e1"`, `" 2"`, `"2=5"`) is null, never coerced.
 */
export function decimalInteger(value: unknown): number | null {
  if (typeof value === "number") return Number.isSafeInteger(value) ? value : null;
  if (typeof value !== "string" || !/^[0-9]{1,15}$/.test(value)) return null;
  return Number.parseInt(value, 10);
}
