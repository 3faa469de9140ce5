/** Timing helpers and the row every benchmark reports. */
import { performance } from "node:perf_hooks";

export interface BenchRow {
  suite: string;
  case: string;
  value: number;
  unit: string;
  note?: string;
}

/** Runs `fn` `repeats` times after one warm-up; best and median in ms. */
export function timeBest(repeats: number, fn: () => void): { best: number; median: number } {
  fn();
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const start = performance.now();
    fn();
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  return { best: times[0], median: times[Math.floor(times.length / 2)] };
}

/** Runs the async `fn` `warmUp` times untimed, then `repeats` times; the median in ms. */
export async function medianAsync(repeats: number, warmUp: number, fn: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < warmUp; i++) await fn();
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const start = performance.now();
    await fn();
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}
