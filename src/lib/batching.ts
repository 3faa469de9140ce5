/**
 * Grouping sequences: one group per sequence, per micro-batch of `m`
 * consecutive sequences (the last may be shorter), or one global group.
 */

/** A contiguous run of sequences `[first, end)`. */
export interface SequenceGroup {
  readonly first: number;
  readonly end: number;
}

export function microBatches(sequenceCount: number, microBatchSequences: number): SequenceGroup[] {
  const groups: SequenceGroup[] = [];
  for (let first = 0; first < sequenceCount; first += microBatchSequences) {
    groups.push({ first, end: Math.min(first + microBatchSequences, sequenceCount) });
  }
  return groups;
}

export function perSequence(sequenceCount: number): SequenceGroup[] {
  return microBatches(sequenceCount, 1);
}

export function wholeBatch(sequenceCount: number): SequenceGroup[] {
  return [{ first: 0, end: sequenceCount }];
}

/** The token index at which each sequence starts, plus the total at the end. */
export function sequenceOffsets(sequenceLengths: readonly number[]): number[] {
  const offsets = [0];
  for (const length of sequenceLengths) offsets.push(offsets[offsets.length - 1] + length);
  return offsets;
}
