import { LabInputError, type BatchLayout, type LogitsBatch, type RouterLogits } from "./types.js";

/** Full scans of the logits' values (the costly part of a check): a test counts them. */
export const valueScanCounter = { scans: 0 };

/** Batches whose check passed; their logits must not change afterwards. */
const checked = new WeakSet<LogitsBatch>();

/**
 * Checks a batch once and remembers it, so that the functions it is handed
 * to next (`summarizeBatch`, the framework simulation) need not scan its
 * values again. Returns the same object.
 */
export function checkedBatch<B extends LogitsBatch>(batch: B): B {
  if (!checked.has(batch)) {
    validateBatch(batch.logits, batch);
    checked.add(batch);
  }
  return batch;
}

/**
 * Marks a batch as checked without scanning it: only for a batch built by
 * library code from one that was just checked, in a way that keeps it valid
 * (padding with finite rows). Nothing a reader hands in goes through here.
 */
export function markChecked<B extends LogitsBatch>(batch: B): B {
  checked.add(batch);
  return batch;
}

/** Whether `checkedBatch` has passed this very object. */
export function isChecked(batch: LogitsBatch): boolean {
  return checked.has(batch);
}

/**
 * Checks that logits and layout agree before any number is computed, so that
 * bad input ends in a sentence rather than in NaN on a page.
 */
export function validateBatch(logits: RouterLogits, layout: BatchLayout, options: { skipValues?: boolean } = {}): void {
  const { layers, tokens, experts, data } = logits;
  if (!(layers >= 1 && tokens >= 1 && experts >= 1)) {
    throw new LabInputError(
      `router logits must have at least one layer, token and expert (got ${layers} × ${tokens} × ${experts})`,
    );
  }
  if (!options.skipValues && data.length !== layers * tokens * experts) {
    throw new LabInputError(
      `router logits hold ${data.length} values, but the shape ${layers} × ${tokens} × ${experts} needs ${layers * tokens * experts}`,
    );
  }
  const { topK, sequenceLengths } = layout;
  if (!Number.isInteger(topK) || topK < 1 || topK > experts) {
    throw new LabInputError(`top_k must be an integer between 1 and the number of experts (${experts}); got ${topK}`);
  }
  let total = 0;
  for (let s = 0; s < sequenceLengths.length; s++) {
    const length = sequenceLengths[s];
    if (!Number.isInteger(length) || length < 1) {
      throw new LabInputError(`sequence ${s} has length ${length}; every sequence length must be a positive integer`);
    }
    total += length;
  }
  if (total !== tokens) {
    throw new LabInputError(`sequence lengths sum to ${total}, but the logits hold ${tokens} tokens`);
  }
  if (options.skipValues) return; // values are checked chunk by chunk as they stream in
  valueScanCounter.scans++;
  const bad = firstInvalidLogit(data);
  if (bad >= 0)
    throw new LabInputError(`router logit at ${logitPosition(logits, bad)} is ${invalidLogitMessage(data[bad])}`);
}

/** The largest float32: no router of a real model emits a logit beyond it. */
export const LARGEST_LOGIT = 3.4028234663852886e38;

/**
 * Index of the first logit that is NaN, infinite, or beyond the float32
 * range (a float64 file could hold 1e300, whose squared logsumexp would
 * overflow the z-loss to Infinity), or -1 when all are fine.
 */
export function firstInvalidLogit(values: ArrayLike<number>): number {
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    // NaN fails both comparisons, hence the negation.
    if (!(v >= -LARGEST_LOGIT && v <= LARGEST_LOGIT)) return i;
  }
  return -1;
}

/** The sentence that names a bad logit and where it sits. */
export function invalidLogitMessage(value: number): string {
  return Number.isFinite(value)
    ? `${value}, beyond the float32 range; router logits must lie within ±3.4e38`
    : `${value}; every logit must be a finite number`;
}

/** Checks a micro-batch size (in sequences). */
export function validateMicroBatch(microBatchSequences: number): void {
  if (!Number.isInteger(microBatchSequences) || microBatchSequences < 1) {
    throw new LabInputError(`micro_batch_sequences must be a positive integer; got ${microBatchSequences}`);
  }
}

/** "layer 2, token 17, expert 5" for a flat index. */
export function logitPosition(shape: { tokens: number; experts: number }, index: number): string {
  const expert = index % shape.experts;
  const token = Math.floor(index / shape.experts) % shape.tokens;
  const layer = Math.floor(index / (shape.experts * shape.tokens));
  return `layer ${layer}, token ${token}, expert ${expert}`;
}
