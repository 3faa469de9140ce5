// The moe-lab command, run as a user runs it: output record, options, and
// one-line errors with exit status 2 for every kind of bad input.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { npyHeader, writeNpy } from "../src/lib/io/npy.js";
import { writeSafetensors } from "../src/lib/io/safetensors.js";
import { assertClose, scratchDir } from "./helpers.js";

const bin = fileURLToPath(new URL("../bin/moe-lab.js", import.meta.url));
const dir = scratchDir("moe-lab-cli-");
const examples = JSON.parse(readFileSync(new URL("./fixtures/worked-examples.json", import.meta.url), "utf8"));

function run(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], (error, stdout, stderr) =>
      resolve({ code: error ? (error.code as number) : 0, stdout, stderr }),
    );
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
    for (const [key, value] of Object.entries(expected[family]))
      assertClose(record[family][key], value as number, 1e-9, `${family}.${key}`);
  }
  assert.deepEqual(record.load, expected.load);
});

test("--top-k and --micro-batch override the file", async () => {
  const { expected: _e, ...input } = examples[1];
  const path = file("w2b.json", JSON.stringify(input));
  const one = JSON.parse((await run("losses", path, "--micro-batch", "4")).stdout);
  assertClose(one.lbl.micro_batch, one.lbl.switch, 1e-12, "one micro-batch holds all");
  const k3 = JSON.parse((await run("losses", path, "--top-k=3")).stdout);
  assert.equal(
    k3.load[0].reduce((a: number, b: number) => a + b, 0),
    12 * 3,
  );
});

test("reads .npy and .safetensors (float32) within 1e-4 of the float64 reference", async () => {
  const example = examples[1];
  const flat = Float32Array.from(example.router_logits.flat(2));
  const npy = await run("losses", file("w.npy", writeNpy(flat, [2, 12, 6])), "--top-k", "2");
  const st = await run(
    "losses",
    file("w.safetensors", writeSafetensors({ router_logits: { data: flat, shape: [2, 12, 6] } }, { top_k: "2" })),
  );
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
  [
    "NaN logits",
    () => ["losses", file("nan.npy", writeNpy(Float32Array.from([0, NaN]), [1, 2])), "--top-k", "1"],
    /is NaN/,
  ],
  [
    "infinite logits",
    () => ["losses", file("inf.npy", writeNpy(Float32Array.from([0, -Infinity]), [1, 2])), "--top-k", "1"],
    /is -Infinity/,
  ],
  [
    "top_k too large",
    () => ["losses", file("k.json", '{"router_logits": [[[1, 2]]], "top_k": 3}')],
    /top_k must be an integer between 1 and the number of experts \(2\); got 3/,
  ],
  ["top_k zero", () => ["losses", file("k0.json", '{"router_logits": [[[1, 2]]], "top_k": 0}')], /top_k must be/],
  [
    "no top_k anywhere",
    () => ["losses", file("nok.json", '{"router_logits": [[[1, 2]]]}')],
    /does not say top_k: pass --top-k K/,
  ],
  [
    "sequence lengths that do not sum to T",
    () => ["losses", file("seq.json", '{"router_logits": [[[1, 2], [2, 1]]], "top_k": 1, "sequence_lengths": [1, 2]}')],
    /sum to 3, but the logits hold 2 tokens/,
  ],
  [
    "truncated .npy",
    () => ["losses", file("t.npy", writeNpy(new Float32Array(40), [2, 5, 4]).slice(0, 200)), "--top-k", "1"],
    /truncated/,
  ],
  [
    "mislabelled .npy",
    () => ["losses", file("m.npy", '{"router_logits": [[[1, 2]]], "top_k": 1}')],
    /named \.npy but its contents look like json/,
  ],
  [
    "truncated .safetensors",
    () => [
      "losses",
      file("t.safetensors", writeSafetensors({ x: { data: new Float32Array(40), shape: [2, 5, 4] } }).slice(0, 100)),
      "--top-k",
      "1",
    ],
    /truncated/,
  ],
  [
    "a directory",
    () => {
      mkdirSync(join(dir, "d.json"), { recursive: true });
      return ["losses", join(dir, "d.json")];
    },
    /it is a directory/,
  ],
  ["unknown option", () => ["losses", "x.json", "--frobnicate"], /unknown option '--frobnicate'/],
  ["non-integer --top-k", () => ["losses", "x.json", "--top-k", "two"], /--top-k needs a decimal integer, got 'two'/],
  // only decimal integers count: no hex, exponents, booleans or trailing text
  ["hexadecimal --top-k", () => ["losses", "x.json", "--top-k", "0x2"], /--top-k needs a decimal integer, got '0x2'/],
  ["--top-k=2=5", () => ["losses", "x.json", "--top-k=2=5"], /--top-k needs a decimal integer, got '2=5'/],
  [
    "exponent --micro-batch",
    () => ["losses", "x.json", "--micro-batch", "1e1"],
    /--micro-batch needs a decimal integer, got '1e1'/,
  ],
  [
    "top_k true in the file",
    () => ["losses", file("tk-true.json", '{"router_logits": [[1, 2]], "top_k": true}')],
    /"top_k" in .* must be an integer; got true/,
  ],
  [
    "top_k [3] in the file",
    () => ["losses", file("tk-list.json", '{"router_logits": [[1, 2]], "top_k": [3]}')],
    /"top_k" in .* must be an integer; got a list/,
  ],
  [
    "top_k '0x2' in safetensors metadata",
    () => [
      "losses",
      file(
        "tk-hex.safetensors",
        writeSafetensors({ l: { data: new Float32Array(8), shape: [4, 2] } }, { top_k: "0x2" }),
      ),
    ],
    /metadata 'top_k' .* "0x2", not a decimal integer/,
  ],
  // devices and pipes are refused before anything is read: no hang, no unbounded read
  [
    "a FIFO with no writer",
    () => {
      const path = join(dir, "fifo.npy");
      execFileSync("mkfifo", [path]);
      return ["losses", path];
    },
    /it is a named pipe \(FIFO\)/,
  ],
  ["/dev/zero", () => ["losses", "/dev/zero", "--top-k", "1"], /it is a character device/],
  // a shape is checked before anything is sized from it
  [
    "a tiny file declaring [1, 5e9, 0, 8]",
    () => [
      "losses",
      file(
        "huge-shape.safetensors",
        safetensorsWithHeader({ x: { dtype: "F32", shape: [1, 5e9, 0, 8], data_offsets: [0, 0] } }),
      ),
    ],
    /a dimension of 0 holds no router logits/,
  ],
  [
    "a tiny .npy declaring [1, 1e8, 0, 8]",
    () => ["losses", file("huge-shape.npy", npyHeader("<f4", [1, 100000000, 0, 8]))],
    /a dimension of 0 holds no router logits/,
  ],
  [
    "JSON nested 10,000 deep",
    () => ["losses", file("deep.json", '{"router_logits": ' + "[".repeat(10_000) + "]".repeat(10_000) + "}")],
    /nested more than 4 lists deep/,
  ],
  // safetensors whose offsets do not tile the data exactly, as the reference implementation refuses
  [
    "safetensors with overlapping data_offsets",
    () => [
      "losses",
      file(
        "overlap.safetensors",
        safetensorsWithHeader(
          {
            "l.0": { dtype: "F32", shape: [2, 2], data_offsets: [0, 16] },
            "l.1": { dtype: "F32", shape: [2, 2], data_offsets: [8, 24] },
          },
          24,
        ),
      ),
    ],
    /overlapping data_offsets/,
  ],
  [
    "safetensors with a gap between tensors",
    () => [
      "losses",
      file(
        "gap.safetensors",
        safetensorsWithHeader(
          {
            "l.0": { dtype: "F32", shape: [2, 2], data_offsets: [0, 16] },
            "l.1": { dtype: "F32", shape: [2, 2], data_offsets: [20, 36] },
          },
          36,
        ),
      ),
    ],
    /must be contiguous/,
  ],
  [
    "safetensors with trailing bytes",
    () => [
      "losses",
      file(
        "trailing.safetensors",
        safetensorsWithHeader({ x: { dtype: "F32", shape: [2, 2], data_offsets: [0, 16] } }, 20),
      ),
    ],
    /4 bytes after its last tensor/,
  ],
  [
    "safetensors with a duplicate key",
    () => [
      "losses",
      file(
        "dup.safetensors",
        safetensorsWithText(
          '{"l.0": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}, "l.0": {"dtype": "F32", "shape": [2, 2], "data_offsets": [16, 32]}}',
          32,
        ),
      ),
    ],
    /names 'l\.0' twice/,
  ],
  // one line even when the file name holds a newline
  [
    "a file name with a newline",
    () => ["losses", join(dir, "two\nlines.json")],
    /cannot read .*two\\nlines\.json: no such file\n$/,
  ],
];

/** A safetensors file with this header object and `dataBytes` zero bytes of data. */
function safetensorsWithHeader(header: Record<string, unknown>, dataBytes = 0): Uint8Array {
  return safetensorsWithText(JSON.stringify(header), dataBytes);
}

function safetensorsWithText(text: string, dataBytes: number): Uint8Array {
  const json = new TextEncoder().encode(text);
  const bytes = new Uint8Array(8 + json.length + dataBytes);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(json.length), true);
  bytes.set(json, 8);
  return bytes;
}

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

test("--version prints the package's name and version", async () => {
  const { code, stdout } = await run("--version");
  assert.equal(code, 0);
  const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
  assert.equal(stdout, `${pkg.name} ${pkg.version}\n`);
});

test("- reads standard input", async () => {
  const { expected: _e, ...input } = examples[1];
  const out = await new Promise<{ code: number; stdout: string }>((resolve) => {
    const child = execFile(process.execPath, [bin, "losses", "-"], (error, stdout) =>
      resolve({ code: error ? (error.code as number) : 0, stdout }),
    );
    child.stdin!.end(JSON.stringify(input));
  });
  assert.equal(out.code, 0);
  assert.deepEqual(JSON.parse(out.stdout).load, examples[1].expected.load);
});

test("float64 per-layer safetensors keep float64 precision (one path with the page)", async () => {
  // logits whose float32 rounding changes the z-loss in the 9th digit
  const layer = (l: number) => Float64Array.from({ length: 3 * 4 }, (_, i) => 1 + 1e-9 * (i + 7 * l) + i * 0.125);
  const tensors: Record<string, { dtype: string; shape: number[]; data_offsets: number[] }> = {};
  const data = new Uint8Array(2 * 12 * 8);
  for (const l of [0, 1]) {
    tensors[`layer.${l}`] = { dtype: "F64", shape: [3, 4], data_offsets: [l * 96, (l + 1) * 96] };
    data.set(new Uint8Array(layer(l).buffer), l * 96);
  }
  const json = new TextEncoder().encode(JSON.stringify({ ...tensors, __metadata__: { top_k: "2" } }));
  const bytes = new Uint8Array(8 + json.length + data.length);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(json.length), true);
  bytes.set(json, 8);
  bytes.set(data, 8 + json.length);
  const out = await run("losses", file("f64.safetensors", bytes));
  assert.equal(out.code, 0, out.stderr);
  const viaJson = await run(
    "losses",
    file(
      "f64.json",
      JSON.stringify({
        router_logits: [0, 1].map((l) =>
          Array.from({ length: 3 }, (_, t) => Array.from(layer(l).slice(t * 4, t * 4 + 4))),
        ),
        top_k: 2,
      }),
    ),
  );
  assert.equal(
    JSON.parse(out.stdout).z_loss.st_moe,
    JSON.parse(viaJson.stdout).z_loss.st_moe,
    "F64 safetensors equal the float64 JSON exactly",
  );
});

test("a valid file over 2 GiB is streamed in bounded memory", { timeout: 30 * 60_000 }, async () => {
  // A sparse file: 1 layer × 1,048,600 tokens × 256 experts of float64 zeros (2.0 GiB of data).
  const tokens = 1_048_600;
  const path = join(dir, "big.npy");
  const header = npyHeader("<f8", [1, tokens, 256]);
  writeFileSync(path, header);
  execFileSync("truncate", ["-s", String(header.length + tokens * 256 * 8), path]);
  let peakKiB = 0;
  const out = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    const child = execFile(
      process.execPath,
      [bin, "losses", path, "--top-k", "8"],
      { maxBuffer: 1 << 26 },
      (error, stdout, stderr) => {
        clearInterval(watch);
        resolve({ code: error ? (error.code as number) : 0, stdout, stderr });
      },
    );
    // the child's resident high-water mark, read while it runs (Linux)
    const watch = setInterval(() => {
      try {
        peakKiB = Math.max(
          peakKiB,
          Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"))?.[1] ?? 0),
        );
      } catch {
        // the child has just exited
      }
    }, 50);
  });
  assert.equal(out.code, 0, out.stderr);
  const record = JSON.parse(out.stdout);
  assert.equal(
    record.load[0].reduce((a: number, b: number) => a + b, 0),
    tokens * 8,
    "every token routed",
  );
  assert.equal(record.lbl.switch, 1, "all-equal logits: f = 1/8 on 8 experts, P = 1/256 on all");
  assert.ok(
    peakKiB > 0 && peakKiB < 1024 * 1024,
    `peak resident memory ${(peakKiB / 1024).toFixed(0)} MiB for a 2 GiB file`,
  );
});

test(
  "a valid file of many one-token sequences is refused before any row is read, with the limit explained",
  { timeout: 10 * 60_000 },
  async () => {
    // [16 layers, 240,000 sequences of 1 token, 64 experts] of float16: 470 MiB (sparse), whose
    // per-sequence sums would need 3.7 GiB
    const path = join(dir, "one-token-sequences.npy");
    const header = npyHeader("<f2", [16, 240000, 1, 64]);
    writeFileSync(path, header);
    execFileSync("truncate", ["-s", String(header.length + 16 * 240000 * 64 * 2), path]);
    const out = await run("losses", path, "--top-k", "8");
    assert.equal(out.code, 2, out.stderr);
    assert.match(
      out.stderr,
      /^moe-lab: 240,000 sequences × 16 layers × 64 experts need 3\.7 GiB of per-sequence sums, over the 1 GiB this lab allows itself; give fewer, longer sequences/,
    );
  },
);

test("a .npy header longer than 64 KiB is read whole", async () => {
  // format 2.0: a 4-byte header length; numpy pads headers with spaces
  const dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }";
  const headerText = new TextEncoder().encode(dict.padEnd(100_000 - 13) + "\n");
  const data = Float32Array.from({ length: 12 }, (_, i) => Math.sin(i));
  const bytes = new Uint8Array(12 + headerText.length + data.byteLength);
  bytes.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 2, 0]);
  new DataView(bytes.buffer).setUint32(8, headerText.length, true);
  bytes.set(headerText, 12);
  bytes.set(new Uint8Array(data.buffer), 12 + headerText.length);
  const long = await run("losses", file("long-header.npy", bytes), "--top-k", "2");
  const plain = await run("losses", file("plain-header.npy", writeNpy(data, [3, 4])), "--top-k", "2");
  assert.equal(long.code, 0, long.stderr);
  assert.equal(long.stdout, plain.stdout);
});

test("--help prints usage and exits 0", async () => {
  const { code, stdout } = await run("--help");
  assert.equal(code, 0);
  assert.match(stdout, /usage: moe-lab losses FILE/);
});

test("--framework adds what the framework applies, computed from the file in its own precision", async () => {
  const example = examples[1];
  const { name: _name, expected: _expected, ...input } = example;
  const path = file("framework.json", JSON.stringify(input));
  const { code, stdout, stderr } = await run("losses", path, "--framework", "olmoe");
  assert.equal(code, 0, stderr);
  const record = JSON.parse(stdout);
  const L = input.router_logits.length;
  const k = input.top_k;
  // The OLMoE fork: w · mean over layers of lbl.switch, β · z_loss.st_moe / k.
  assertClose(record.framework.aux_loss, 0.01 * record.lbl.switch, 1e-12, "aux_loss");
  assertClose(record.framework.z_loss, 0.001 * record.z_loss.olmoe, 1e-12, "z_loss");
  assertClose(record.framework.per_layer_alpha, 0.01 / L, 1e-15, "per_layer_alpha");
  assertClose(record.framework.per_layer_beta, 0.001 / (L * k), 1e-15, "per_layer_beta");
  // Megatron with coefficients given: the per-layer sum.
  const megatron = JSON.parse(
    (await run("losses", path, "--framework=megatron", "--alpha", "0.02", "--beta=1e-3")).stdout,
  ).framework;
  assertClose(megatron.aux_loss, 0.02 * L * record.lbl.switch, 1e-12, "megatron aux");
  assertClose(megatron.z_loss, 0.001 * L * record.z_loss.st_moe, 1e-12, "megatron z");
  assert.equal(megatron.per_layer_alpha, 0.02);
});

test("--framework with --dp/--ga simulates the layout: Hugging Face's aux loss grows × GA", async () => {
  const tokens = 8;
  const logits = [Array.from({ length: tokens }, (_, t) => [Math.sin(t), Math.cos(t), 0.1 * t, -0.2 * t])];
  const path = file(
    "hf-layout.json",
    JSON.stringify({ router_logits: logits, top_k: 1, sequence_lengths: [2, 2, 2, 2] }),
  );
  const one = JSON.parse((await run("losses", path, "--framework", "hf", "--alpha", "0.1")).stdout).framework;
  const four = JSON.parse(
    (await run("losses", path, "--framework", "hf", "--alpha", "0.1", "--ga", "4")).stdout,
  ).framework;
  assert.equal(one.per_layer_alpha, (0.1 * 1) / 1);
  assertClose(four.per_layer_alpha, 0.4, 1e-15, "× GA");
  assert.equal(four.gradient_accumulation, 4);
});

test("float64 logits 1e-10 apart pick the larger, as the framework would", async () => {
  const path = file(
    "close.json",
    JSON.stringify({
      router_logits: [
        [
          [1, 1.0000000002, 0],
          [1.0000000003, 1, 0],
        ],
      ],
      top_k: 1,
    }),
  );
  const record = JSON.parse((await run("losses", path)).stdout);
  assert.deepEqual(record.load, [[1, 1, 0]]);
});

test("bad framework options: one line, exit 2", async () => {
  const path = file(
    "fw-bad.json",
    JSON.stringify({
      router_logits: [
        [
          [1, 2],
          [2, 1],
        ],
      ],
      top_k: 1,
    }),
  );
  const cases: [string[], RegExp][] = [
    [["--framework", "nope"], /unknown framework 'nope'; known: megatron, megatron-seq/],
    [["--framework"], /--framework needs a name; known:/],
    [["--framework", "hf", "--beta", "0.1"], /has no router z-loss/],
    [["--framework", "torchtitan", "--alpha", "0.1"], /adds no load-balancing loss/],
    [["--framework", "megatron", "--alpha", "-1"], /--alpha needs a number ≥ 0/],
    [["--framework", "megatron", "--alpha", "NaN"], /--alpha needs a number ≥ 0/],
    [["--framework", "megatron", "--beta", "1e999"], /--beta must be finite/],
    [["--framework", "megatron", "--dp", "0"], /--dp must be a positive integer/],
    [["--framework", "megatron", "--ga", "1.5"], /--ga needs a decimal integer/],
    [["--framework", "megatron", "--dp", "3"], /DP × GA must divide the number of sequences/],
    [["--alpha", "0.1"], /--alpha applies to a framework/],
    [["--pad-to", "4"], /--pad-to applies to a framework/],
    [["--framework", "megatron", "--pad-to", "1"], /pad to at least the longest sequence/],
    [["--framework", "hf", "--per-token-loss"], /Megatron-LM option/],
    [["--framework", "megatron", "--per-token-loss=yes"], /takes no value/],
  ];
  for (const [args, pattern] of cases) {
    const { code, stdout, stderr } = await run("losses", path, ...args);
    assert.equal(code, 2, `${args.join(" ")}: ${stderr}`);
    assert.equal(stdout, "");
    assert.match(stderr.split("\n")[0], pattern, args.join(" "));
  }
  const three = file(
    "fw-three.json",
    JSON.stringify({
      router_logits: [
        [
          [1, 2, 3],
          [3, 2, 1],
        ],
      ],
      top_k: 3,
    }),
  );
  const openmoe = await run("losses", three, "--framework", "openmoe");
  assert.equal(openmoe.code, 2);
  assert.match(openmoe.stderr, /has only top-1 and top-2 routers; these logits use top-3/);
  const help = await run("--help");
  assert.match(help.stdout, /--framework NAME/);
  assert.match(help.stdout, /olmo-core: OLMo-core's loss functions default to dividing by tokens/);
});
