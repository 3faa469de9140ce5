/**
 * The sample texts of data/samples/*.txt, by name (the file name without
 * `.txt`), read from disk: for Node only (the build-time loaders and the
 * bench). Pages get the same map from src/assets/samples.json, which
 * scripts/prepare-assets.mjs writes from these files.
 */
import { readFileSync, readdirSync } from "node:fs";

export function readSampleFiles(root: URL): Record<string, string> {
  const dir = new URL("data/samples/", root);
  return Object.fromEntries(
    readdirSync(dir)
      .filter((file) => file.endsWith(".txt"))
      .map((file) => [file.replace(/\.txt$/, ""), readFileSync(new URL(file, dir), "utf8")]),
  );
}
