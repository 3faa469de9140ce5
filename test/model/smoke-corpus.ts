// A toy corpus for the recipe's own tests: paragraphs of the committed
// samples (every fifth held out), repeated so that random windows of 257
// tokens always fit, tokenized by the lab's TypeScript tokenizer at 400 ids.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { scratchDir } from "../helpers.js";

export const root = fileURLToPath(new URL("../../", import.meta.url));
export const python = "/usr/bin/python3";

export function makeSmokeCorpus(prefix: string): { dir: string; corpus: string } {
  const dir = scratchDir(prefix);
  const corpus = join(dir, "corpus");
  mkdirSync(corpus);
  const lines: { train: string[]; heldout: string[] } = { train: [], heldout: [] };
  for (const name of readdirSync(join(root, "data/samples"))) {
    const domain = name.startsWith("prose") ? "prose" : "code";
    const paragraphs = readFileSync(join(root, "data/samples", name), "utf8").split(/\n\s*\n/);
    paragraphs.forEach((text, i) =>
      (i % 5 === 4 ? lines.heldout : lines.train).push(
        JSON.stringify({ domain, kind: name, source: `${name}#${i}`, text }),
      ),
    );
  }
  writeFileSync(join(corpus, "train.jsonl"), Array(8).fill(lines.train.join("\n")).join("\n") + "\n");
  writeFileSync(join(corpus, "heldout.jsonl"), Array(6).fill(lines.heldout.join("\n")).join("\n") + "\n");
  execFileSync(
    process.execPath,
    ["--import", "tsx", "data/recipe/tokenize.ts", "--vocab", "400", "--corpus", corpus, "--out", dir],
    { cwd: root, stdio: ["ignore", "pipe", "pipe"] },
  );
  return { dir, corpus };
}

/**
 * Why the recipe's Python tools cannot run here ("" when they can). Locally a
 * test skips with that reason; in CI (`CI` set) a missing tool is an error.
 */
export function missingRecipeTools(modules: string[]): string {
  const probe = spawnSync(python, ["-c", `import ${modules.join(", ")}`], { encoding: "utf8" });
  if (probe.status === 0) return "";
  const packages = modules.map((m) => `python3-${m}`).join(" ");
  const reason = `${python} cannot import ${modules.join(" and ")} (apt-get install ${packages} libopenblas0-pthread)`;
  if (process.env.CI) throw new Error(`CI needs the training recipe's tools: ${reason}`);
  return reason;
}
