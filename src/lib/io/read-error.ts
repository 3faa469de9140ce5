import { LabInputError } from "../types.js";

/**
 * The message a reader sees when reading a file failed: the lab's own message
 * for bad input; "too large" only for an allocation that did not fit; any
 * other error (a RangeError from a deep recursion or a bad computed length
 * included) as an unexpected error to report, with its own text, so a
 * 150-byte file is never said to be too large.
 */
export function describeReadError(error: unknown): string {
  if (error instanceof LabInputError) return error.message;
  const message = error instanceof Error ? error.message : String(error);
  if (
    error instanceof RangeError &&
    /Array buffer allocation failed|Invalid (typed )?array length|out of memory/i.test(message)
  ) {
    return `this file needs more memory than this browser tab could allocate (${message})`;
  }
  return `unexpected error, please report it: ${message}`;
}
