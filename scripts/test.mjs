#!/usr/bin/env node
// `npm test`: every suite, the independent ones side by side.
//   1. format check, typecheck, library/CLI tests, model tests and the site build at once
//      (none reads what another writes);
//   2. then the browser tests, which need the build, two files at a time.
// Each step's output is printed whole when it ends, so parallel output never
// interleaves; the run ends with one line per step and the total time.
import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";

const browserTests = readdirSync("test/browser")
  .filter((f) => f.endsWith(".test.ts"))
  .map((f) => `test/browser/${f}`);
const npm = process.platform === "win32" ? "npm.cmd" : "npm";
const phases = [
  [
    ["format", npm, ["run", "--silent", "format:check"]],
    ["typecheck", npm, ["run", "--silent", "typecheck"]],
    ["unit", npm, ["run", "--silent", "test:unit"]],
    ["model", npm, ["run", "--silent", "test:model"]],
    ["build", npm, ["run", "--silent", "build"]],
  ],
  [["browser", process.execPath, ["--import", "tsx", "--test", "--test-concurrency=2", ...browserTests]]],
];

function run([name, command, args]) {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"], shell: false, env: process.env });
    const output = [];
    child.stdout.on("data", (chunk) => output.push(chunk));
    child.stderr.on("data", (chunk) => output.push(chunk));
    child.on("close", (code, signal) => {
      const seconds = (Date.now() - started) / 1000;
      process.stdout.write(`\n── ${name} (${seconds.toFixed(0)} s) ${"─".repeat(40)}\n`);
      process.stdout.write(Buffer.concat(output));
      resolve({ name, ok: code === 0, code: code ?? signal, seconds });
    });
    child.on("error", (error) => resolve({ name, ok: false, code: error.message, seconds: 0 }));
  });
}

const started = Date.now();
const results = [];
for (const phase of phases) {
  results.push(...(await Promise.all(phase.map(run))));
  if (results.some((r) => !r.ok)) break;
}
process.stdout.write("\n");
for (const r of results)
  process.stdout.write(
    `${r.ok ? "pass" : "FAIL"}  ${r.name.padEnd(10)} ${r.seconds.toFixed(0).padStart(5)} s${r.ok ? "" : `  (exit ${r.code})`}\n`,
  );
process.stdout.write(
  `npm test: ${results.every((r) => r.ok) ? "all passed" : "failed"} in ${((Date.now() - started) / 60000).toFixed(1)} min\n`,
);
process.exit(results.every((r) => r.ok) && results.length === phases.flat().length ? 0 : 1);
