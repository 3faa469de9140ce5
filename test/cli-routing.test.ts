// `moe-lab losses` with a routing convention: the loads, MaxVio and losses of
// the route a preset or explicit options dispatch, equal to the library's
// ConventionRouter row by row; contradictions and bad groups or biases end in
// one line and exit status 2.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { writeNpy } from "../src/lib/io/npy.js";
import { writeSafetensors } from "../src/lib/io/safetensors.js";
import { ConventionRouter } from "../src/lib/conventions.js";
import { routingPresets } from "../src/lib/presets.js";
import { lossRecord } from "../src/lib/losses/index.js";
import { summarize } from "../src/lib/summary.js";
import { normalGenerator } from "../src/lib/random.js";
import { assertClose, scratchDir } from "./helpers.js";
import { routeLayer, loadOf, differingTokens } from "../src/lib/routed-layer.js";
import { maxVioOfLoad } from "../src/lib/losses/max-vio.js";
import { switchLblFromLoad } from "../src/lib/capacity.js";

const bin = fileURLToPath(new URL("../bin/moe-lab.js", import.meta.url));
const dir = scratchDir("moe-lab-routing-");
const run = (...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
  new Promise((resolve) =>
    execFile(process.execPath, [bin, ...args], (error, stdout, stderr) =>
      resolve({ code: error ? (error.code as number) : 0, stdout, stderr }),
    ),
  );
const save = (name: string, contents: string | Uint8Array) => {
  const path = join(dir, name);
  writeFileSync(path, contents);
  return path;
};

const layers = 2,
  tokens = 40,
  experts = 16;
const normal = normalGenerator(7);
const data = Float32Array.from(
  { length: layers * tokens * experts },
  (_, i) => 1.5 * normal() + (i % experts < 4 ? 0.7 : 0),
);
const logitsPath = save("router.npy", writeNpy(data, [layers, tokens, experts]));
const bias = Array.from({ length: layers }, (_, l) =>
  Array.from({ length: experts }, (_, e) => ((e * 3 + l) % 7) * 0.05 - 0.15),
);
const biasPath = save("bias.json", JSON.stringify(bias));

test("--preset deepseek-v3 with --bias: the loads are the dispatched route, row by row as the library routes it", async () => {
  const { code, stdout, stderr } = await run(
    "losses",
    logitsPath,
    "--top-k",
    "8",
    "--preset",
    "deepseek-v3",
    "--bias",
    biasPath,
  );
  assert.equal(code, 0, stderr);
  const record = JSON.parse(stdout);
  const convention = routingPresets["deepseek-v3"].convention(8);
  const router = new ConventionRouter(convention, experts);
  const load = Array.from({ length: layers }, () => new Array(experts).fill(0));
  for (let l = 0; l < layers; l++)
    for (let t = 0; t < tokens; t++) {
      router.route(data, (l * tokens + t) * experts, bias[l]);
      for (const e of router.chosen) load[l][e]++;
    }
  assert.deepEqual(record.load, load);
  // the rest of the record from the library on the same route
  const expected = lossRecord(
    summarize({ data, layers, tokens, experts }, 8, [tokens], { convention, selectionBias: bias.flat() }),
  );
  assertClose(record.max_vio.global, expected.max_vio.global, 1e-12, "MaxVio");
  assertClose(record.lbl.switch, expected.lbl.switch, 1e-12, "lbl.switch");
  assert.equal(record.routing.score, "sigmoid");
  assert.equal(record.routing.scalingFactor, 2.5);
  assert.equal(record.routing.bias, "given");
  // and the route differs from the plain softmax one
  const plain = JSON.parse((await run("losses", logitsPath, "--top-k", "8")).stdout);
  assert.notDeepEqual(plain.load, record.load);
  assert.equal(plain.routing, undefined, "no routing entry without a convention");
});

test("the record shows the map the aux loss counts beside the dispatched route, per layer", async () => {
  const { stdout } = await run("losses", logitsPath, "--top-k", "8", "--preset", "deepseek-v3", "--bias", biasPath);
  const aux = JSON.parse(stdout).routing.aux_map;
  // independently: routeLayer keeps both maps slot by slot
  const convention = routingPresets["deepseek-v3"].convention(8);
  for (let l = 0; l < layers; l++) {
    const rows = data.subarray(l * tokens * experts, (l + 1) * tokens * experts);
    const routed = routeLayer(rows, tokens, experts, convention, bias[l]);
    assert.equal(aux.tokens_differing[l], differingTokens(routed.chosen, routed.auxChosen, 8));
    assertClose(aux.max_vio_route[l], maxVioOfLoad(loadOf(routed.chosen, experts), tokens, 8), 1e-12, "route");
    assertClose(aux.max_vio_aux_map[l], maxVioOfLoad(loadOf(routed.auxChosen, experts), tokens, 8), 1e-12, "map");
    const f = (chosen: Int32Array) => switchLblFromLoad(loadOf(chosen, experts), routed.balanceSum, tokens, 8);
    assertClose(aux.lbl_route[l], f(routed.chosen), 1e-12, "lbl route");
    assertClose(aux.lbl_aux_map[l], f(routed.auxChosen), 1e-12, "lbl map");
  }
  assert.ok(
    aux.tokens_differing.some((share: number) => share > 0),
    "bias and groups move some tokens off the aux map",
  );
  // no convention, no bias: no routing entry at all
  assert.equal(JSON.parse((await run("losses", logitsPath, "--top-k", "8")).stdout).routing, undefined);
});

test("explicit options build the same convention as the preset they spell out", async () => {
  const preset = JSON.parse((await run("losses", logitsPath, "--top-k", "8", "--preset", "deepseek-v3")).stdout);
  const spelled = JSON.parse(
    (
      await run(
        "losses",
        logitsPath,
        "--top-k",
        "8",
        "--score",
        "sigmoid",
        "--groups",
        "8",
        "--topk-groups",
        "4",
        "--group-rule",
        "deepseek-v3",
        "--scaling-factor",
        "2.5",
      )
    ).stdout,
  );
  assert.deepEqual(spelled.load, preset.load);
  assert.equal(spelled.lbl.switch, preset.lbl.switch);
});

test("bad routing options: one line each, exit status 2", async () => {
  const cases: [string[], RegExp][] = [
    [
      ["--preset", "deepseek-v3", "--score", "softmax"],
      /DeepSeek-V3 preset has score function sigmoid, but softmax was asked/,
    ],
    [["--preset", "nope"], /unknown preset 'nope'; known: deepseek-v3/],
    [["--score", "sigmoid", "--groups", "3", "--topk-groups", "1"], /3 groups do not divide 16 experts/],
    [["--score", "sigmoid", "--groups", "4", "--topk-groups", "5"], /between 1 and the 4 groups; got 5/],
    [
      ["--score", "sigmoid", "--groups", "8", "--topk-groups", "1"],
      /top-8 cannot be chosen from 1 kept group of 2 experts/,
    ],
    [["--score", "sigmoid", "--groups", "4"], /needs both the number of groups and the groups kept/],
    [["--score", "tanh"], /unknown score function 'tanh'/],
    [["--scaling-factor", "0"], /--scaling-factor must be greater than 0/],
    [["--bias", save("short.json", "[0, 1, 2]")], /holds 3 numbers; the logits have 16 experts/],
    [["--bias", save("layers.json", JSON.stringify([bias[0]]))], /holds 1 layers; the logits have 2/],
    [["--bias", save("huge.json", `[1e400${",0".repeat(experts - 1)}]`)], /is not finite at layer 0, expert 0/],
    [["--bias", join(dir, "missing.json")], /cannot read the bias file .*missing\.json: no such file/],
    [["--preset", "olmoe", "--framework", "megatron"], /--framework simulates the framework's own softmax router/],
  ];
  for (const [args, message] of cases) {
    const { code, stdout, stderr } = await run("losses", logitsPath, "--top-k", "8", ...args);
    assert.equal(code, 2, `${args.join(" ")}: ${stdout}`);
    assert.match(stderr.split("\n")[0], message, args.join(" "));
  }
});

test("sigmoid scores asked of probabilities: the numbers come with a warning", async () => {
  const probabilities = Float32Array.from({ length: tokens * experts }, (_, i) => (i % experts === 0 ? 0.55 : 0.03));
  const path = save("probs.npy", writeNpy(probabilities, [tokens, experts]));
  const { code, stderr } = await run("losses", path, "--top-k", "2", "--score", "sigmoid");
  assert.equal(code, 0);
  assert.match(stderr, /warning: every row checked sums to 1: these look like probabilities/);
});

test("a .safetensors file's own expert bias routes it, exactly as --bias with the same numbers", async () => {
  // values exact in float32, so the file's F32 bias and the JSON bias are the same numbers
  const exact = bias.map((row) => row.map((b) => Math.round(b * 64) / 64));
  const exactPath = save("exact-bias.json", JSON.stringify(exact));
  const perLayer = (l: number) => data.slice(l * tokens * experts, (l + 1) * tokens * experts);
  const megatronStyle = save(
    "with-bias.safetensors",
    writeSafetensors({
      "layer.0": { data: perLayer(0), shape: [tokens, experts] },
      "layer.1": { data: perLayer(1), shape: [tokens, experts] },
      "decoder.layers.0.mlp.router.expert_bias": { data: Float32Array.from(exact[0]), shape: [experts] },
      "decoder.layers.1.mlp.router.expert_bias": { data: Float32Array.from(exact[1]), shape: [experts] },
    }),
  );
  const args = ["--top-k", "8", "--preset", "deepseek-v3"];
  const fromFile = JSON.parse((await run("losses", megatronStyle, ...args)).stdout);
  const given = JSON.parse((await run("losses", logitsPath, ...args, "--bias", exactPath)).stdout);
  assert.deepEqual(fromFile.load, given.load);
  assert.equal(fromFile.lbl.switch, given.lbl.switch);
  assert.match(fromFile.routing.bias, /from the file: 'decoder\.layers\.0\.mlp\.router\.expert_bias'/);
  const unbiased = JSON.parse((await run("losses", logitsPath, ...args)).stdout);
  assert.notDeepEqual(fromFile.load, unbiased.load, "the bias moves the route");
  // --ignore-file-bias: the route without it
  const ignored = JSON.parse((await run("losses", megatronStyle, ...args, "--ignore-file-bias")).stdout);
  assert.deepEqual(ignored.load, unbiased.load);

  // DeepSeek-V3's name in Hugging Face transformers, as one [L, E] tensor
  const hfStyle = save(
    "hf-bias.safetensors",
    writeSafetensors({
      router_logits: { data, shape: [layers, tokens, experts] },
      e_score_correction_bias: { data: Float32Array.from(exact.flat()), shape: [layers, experts] },
    }),
  );
  assert.deepEqual(JSON.parse((await run("losses", hfStyle, ...args)).stdout).load, given.load);
});

test("a file's expert bias that does not fit, is not finite, or meets --bias: one message, exit status 2", async () => {
  let made = 0;
  const one = (extra: Record<string, { data: Float32Array; shape: number[] }>) =>
    save(
      `bad-bias-${made++}.safetensors`,
      writeSafetensors({ router_logits: { data, shape: [layers, tokens, experts] }, ...extra }),
    );
  const cases: [string, string[], RegExp][] = [
    [
      one({ expert_bias: { data: new Float32Array(experts), shape: [experts] } }),
      [],
      /expert bias in .* \('expert_bias', shape \[16\]\) does not fit 2 layers × 16 experts/,
    ],
    [
      one({
        expert_bias: {
          data: Float32Array.from({ length: layers * experts }, (_, i) => (i === 5 ? NaN : 0)),
          shape: [layers, experts],
        },
      }),
      [],
      /expert bias in .* is not finite at layer 0, expert 5: NaN/,
    ],
    [
      one({ expert_bias: { data: new Float32Array(layers * experts), shape: [layers, experts] } }),
      ["--bias", biasPath],
      /carries its own expert bias \('expert_bias'\) and --bias gives another: drop --bias, or add --ignore-file-bias/,
    ],
    [
      save("only-bias.safetensors", writeSafetensors({ expert_bias: { data: new Float32Array(4), shape: [4] } })),
      [],
      /holds an expert bias but no router logits/,
    ],
  ];
  for (const [path, args, message] of cases) {
    const { code, stdout, stderr } = await run("losses", path, "--top-k", "8", ...args);
    assert.equal(code, 2, `${args.join(" ")}: ${stderr}`);
    assert.equal(stdout, "");
    assert.match(stderr, message);
    assert.equal(stderr.trim().split("\n").length, 1, stderr);
  }
});

test("--capacity-factor adds what a capacity drops per micro-batch; load and the losses stay dropless", async () => {
  const dropless = JSON.parse((await run("losses", logitsPath, "--top-k", "8", "--micro-batch", "1")).stdout);
  const { code, stdout, stderr } = await run(
    "losses",
    logitsPath,
    "--top-k",
    "8",
    "--capacity-factor",
    "1",
    "--drop-policy",
    "position",
  );
  assert.equal(code, 0, stderr);
  const record = JSON.parse(stdout);
  assert.deepEqual(record.load, dropless.load);
  // one sequence of 40 tokens: ceil(40·8/16 · 1) = 20 slots per expert
  assert.deepEqual(record.capacity.capacity, [20, 20]);
  assert.equal(record.capacity.drop_policy, "position");
  const load0: number[] = dropless.load[0];
  const over = load0.reduce((s, c) => s + Math.max(0, c - 20), 0);
  assertClose(record.capacity.dropped_share[0], over / (tokens * 8), 1e-12, "dropped: the slots over capacity");
  assert.ok(record.capacity.lbl_f_after_drop[0] < record.capacity.lbl_f_before_drop[0]);
  for (const [args, message] of [
    [["--drop-policy", "position"], /--drop-policy needs --capacity-factor/],
    [["--capacity-factor", "0"], /--capacity-factor must be greater than 0/],
    [["--capacity-factor", "1", "--drop-policy", "random"], /--drop-policy is probs or position, got 'random'/],
  ] as [string[], RegExp][]) {
    const bad = await run("losses", logitsPath, "--top-k", "8", ...args);
    assert.equal(bad.code, 2, args.join(" "));
    assert.match(bad.stderr, message);
  }
});
