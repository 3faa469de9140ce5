import { LabInputError, type BatchLayout, type RouterLogits } from "./types.js";

/**
 * Checks that logits and layout agree before any number is computed, so that
 * bad input ends in a sentence rather than in NaN on a page.
 */
export function validateBatch(logits: RouterLogits, layout: BatchLayout): void {
  const { layers, tokens, experts, data } = logits;
  if (!(layers >= 1 && tokens >= 1 && experts >= 1)) {
    throw new LabInputError(`router logits must have at least one layer, token and expert (got ${layers} × ${tokens} × ${experts})`);
  }
  if (data.length !== layers * tokens * experts) {
    throw new LabInputError(`router logits hold ${data.length} values, but the shape ${layers} × ${tokens} × ${experts} needs ${layers * tokens * experts}`);
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
  const bad = firstNonFinite(data);
  if (bad >= 0) {
    const expert = bad % experts;
    const token = Math.floor(bad / experts) % tokens;
    const layer = Math.floor(bad / (experts * tokens));
    throw new LabInputError(`router logit at layer ${layer}, token ${token}, expert ${expert} is ${data[bad]}; every logit must be a finite number`);
  }
}

/** Index of the first NaN or ±Infinity, or -1. */
export function firstNonFinite(values: ArrayLike<number>): number {
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    // v - v is NaN exactly when v is NaN or infinite; cheaper than Number.isFinite per element.
    if (v - v !== 0) return i;
  }
  return -1;
}

/** Checks a micro-batch size (in sequences). */
export function validateMicroBatch(microBatchSequences: number): void {
  if (!Number.isInteger(microBatchSequences) || microBatchSequences < 1) {
    throw new LabInputError(`micro_batch_sequences must be a positive integer; got ${microBatchSequences}`);
  }
}
