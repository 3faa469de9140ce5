// The moe-lab command, run as a user runs it: output record, options, and
// one-line errors with exit status 2 for every kind of bad input.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { writeNpy } from "../src/lib/io/npy.js";
import { writeSafetensors } from "../src/lib/io/safetensors.js";
import { assertClose } from "./helpers.js";

const bin = fileURLToPath(new URL("../bin/moe-lab.js", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "moe-lab-cli-"));
const examples = JSON.parse(readFileSync(new URL("./fixtures/worked-examples.json", import.meta.url), "utf8"));

function run(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], (error, stdout, stderr) => resolve({ code: error ? (error.code as number) : 0, stdout, stderr }));
  });
}

function file(name: string, contents: string | Uint8Array): string {
  const path = join(dir, name);
  writeFileSync(path, contents);
  return path;
}

test("prints exactly the keys of the output record, matching the worked example", async () => {
  const example = examples[1];
  const { name: _name, expected, ...input } = example;
  const { code, stdout, stderr } = await run("losses", file("w2.json", JSON.stringify(input)));
  assert.equal(code, 0, stderr);
  const record = JSON.parse(stdout);
  assert.deepEqual(Object.keys(record).sort(), ["cv2", "lbl", "load", "max_vio", "z_loss"]);
  assert.deepEqual(Object.keys(record.lbl).sort(), ["global", "hf", "micro_batch", "sequence", "switch"]);
  for (const family of ["lbl", "z_loss", "cv2", "max_vio"]) {
    for (const [key, value] of Object.entries(expected[family])) assertClose(record[family][key], value as number, 1e-9, `${family}.${key}`);
  }
  assert.deepEqual(record.load, expected.load);
});

test("--top-k and --micro-batch override the file", async () => {
  const { expected: _e, ...input } = examples[1];
  const path = file("w2b.json", JSON.stringify(input));
  const one = JSON.parse((await run("losses", path, "--micro-batch", "4")).stdout);
  assertClose(one.lbl.micro_batch, one.lbl.switch, 1e-12, "one micro-batch holds all");
  const k3 = JSON.parse((await run("losses", path, "--top-k=3")).stdout);
  assert.equal(k3.load[0].reduce((a: number, b: number) => a + b, 0), 12 * 3);
});

test("reads .npy and .safetensors (float32) within 1e-4 of the float64 reference", async () => {
  const example = examples[1];
  const flat = Float32Array.from(example.router_logits.flat(2));
  const npy = await run("losses", file("w.npy", writeNpy(flat, [2, 12, 6])), "--top-k", "2");
  const st = await run("losses", file("w.safetensors", writeSafetensors({ router_logits: { data: flat, shape: [2, 12, 6] } }, { top_k: "2" })));
  assert.equal(npy.code, 0, npy.stderr);
  assert.equal(st.code, 0, st.stderr);
  for (const out of [JSON.parse(npy.stdout), JSON.parse(st.stdout)]) {
    assert.deepEqual(out.load, example.expected.load);
    assertClose(out.lbl.switch, example.expected.lbl.switch, 1e-4, "float32 switch");
    assertClose(out.z_loss.st_moe, example.expected.z_loss.st_moe, 1e-4, "float32 z");
  }
});

const bad: [string, () => string[], RegExp][] = [
  ["missing file", () => ["losses", join(dir, "nope.json")], /cannot read .*nope\.json: no such file/],
  ["empty file", () => ["losses", file("empty.json", "")], /is empty/],
  ["ragged arrays", () => ["losses", file("ragged.json", '{"router_logits": [[[1, 2], [3]]], "top_k": 1}')], /ragged/],
  ["NaN logits", () => ["losses", file("nan.npy", writeNpy(Float32Array.from([0, NaN]), [1, 2])), "--top-k", "1"], /is NaN/],
  ["infinite logits", () => ["losses", file("inf.npy", writeNpy(Float32Array.from([0, -Infinity]), [1, 2])), "--top-k", "1"], /is -Infinity/],
  ["top_k too large", () => ["losses", file("k.json", '{"router_logits": [[[1, 2]]], "top_k": 3}')], /top_k must be an integer between 1 and the number of experts \(2\); got 3/],
  ["top_k zero", () => ["losses", file("k0.json", '{"router_logits": [[[1, 2]]], "top_k": 0}')], /top_k must be/],
  ["no top_k anywhere", () => ["losses", file("nok.json", '{"router_logits": [[[1, 2]]]}')], /does not say top_k: pass --top-k K/],
  ["sequence lengths that do not sum to T", () => ["losses", file("seq.json", '{"router_logits": [[[1, 2], [2, 1]]], "top_k": 1, "sequence_lengths": [1, 2]}')], /sum to 3, but the logits hold 2 tokens/],
  ["truncated .npy", () => ["losses", file("t.npy", writeNpy(new Float32Array(40), [2, 5, 4]).slice(0, 200)), "--top-k", "1"], /truncated/],
  ["mislabelled .npy", () => ["losses", file("m.npy", '{"router_logits": [[[1, 2]]], "top_k": 1}')], /named \.npy but its contents look like json/],
  ["truncated .safetensors", () => ["losses", file("t.safetensors", writeSafetensors({ x: { data: new Float32Array(40), shape: [2, 5, 4] } }).slice(0, 100)), "--top-k", "1"], /truncated/],
  ["a directory", () => { mkdirSync(join(dir, "d.json"), { recursive: true }); return ["losses", join(dir, "d.json")]; }, /it is a directory/],
  ["unknown option", () => ["losses", "x.json", "--frobnicate"], /unknown option '--frobnicate'/],
  ["non-integer --top-k", () => ["losses", "x.json", "--top-k", "two"], /--top-k needs an integer, got 'two'/],
];

for (const [what, args, message] of bad) {
  test(`bad input ends in one line and exit status 2: ${what}`, async () => {
    const { code, stdout, stderr } = await run(...args());
    assert.equal(code, 2);
    assert.equal(stdout, "");
    assert.match(stderr, message);
    assert.match(stderr, /^moe-lab: /);
    assert.doesNotMatch(stderr, /\n\s+at /, "no stack trace");
  });
}

test("--help prints usage and exits 0", async () => {
  const { code, stdout } = await run("--help");
  assert.equal(code, 0);
  assert.match(stdout, /usage: moe-lab losses FILE/);
});
