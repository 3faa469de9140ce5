/**
 * The sample batch that pages route through OLMoE-mini: the sample texts
 * tokenized and cut into sequences of `length` tokens, code sequences first
 * (Python, JavaScript, C), then prose (documentation, fortunes), as a
 * domain-sorted data loader would deliver them.
 */
import type { Tokenizer } from "./tokenizer.js";

export type SampleDomain = "code" | "prose";

const sources: Record<SampleDomain, string[]> = {
  code: ["python", "javascript", "c"],
  prose: ["prose-docs", "prose-fortunes"],
};

export function sampleSequences(
  tokenizer: Tokenizer,
  samples: Record<string, string>,
  length = 128,
  perDomain = 4,
): { ids: number[]; domain: SampleDomain }[] {
  const sequences: { ids: number[]; domain: SampleDomain }[] = [];
  for (const domain of ["code", "prose"] as const) {
    // The domain's texts encoded in order, only as far as the sequences reach: the first text
    // usually fills them, and encoding all five took 3–4× as long on the page's busy thread.
    const ids: number[] = [];
    for (const name of sources[domain]) {
      if (ids.length >= perDomain * length) break;
      ids.push(...tokenizer.encode(samples[name] ?? ""));
    }
    for (let i = 0; i < perDomain && (i + 1) * length <= ids.length; i++)
      sequences.push({ ids: ids.slice(i * length, (i + 1) * length), domain });
  }
  return sequences;
}
