// The training campaign's runner (data/recipe/campaign.py) on the smoke model:
// it publishes every arm, skips finished ones, resumes an interrupted arm to
// the same numbers an uninterrupted run gives, and refuses bad configs, a
// colliding name, a corrupt state and another arm's run folder, naming the arm.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeSmokeCorpus, python, root, missingRecipeTools } from "./smoke-corpus.js";

const missing = missingRecipeTools(["torch"]);

const arm = (name: string, changes: Record<string, unknown> = {}) => ({
  arm: name,
  seed: 1,
  alpha: 0.01,
  group: 32,
  beta: 0.001,
  z_norm: "olmoe",
  bias_rule: null,
  bias_rate: 0,
  ...changes,
});

test(
  "campaign: publishes, skips what is done, resumes, and refuses what it cannot train",
  { skip: missing || false, timeout: 30 * 60_000 },
  () => {
    const { dir, corpus } = makeSmokeCorpus("moe-lab-campaign-");
    const paths = { runs: join(dir, "runs"), metrics: join(dir, "metrics"), logs: join(dir, "logs") };
    const campaign = (arms: unknown, ...extra: string[]) => {
      const file = join(dir, `arms-${Math.random().toString(36).slice(2)}.json`);
      writeFileSync(file, JSON.stringify(arms));
      const out = spawnSync(
        python,
        [
          "data/recipe/campaign.py",
          "--arms",
          file,
          "--small",
          "--tokens",
          "16384",
          "--corpus",
          corpus,
          "--runs",
          paths.runs,
          "--metrics",
          paths.metrics,
          "--logs",
          paths.logs,
          "--jobs",
          "2",
          ...extra,
        ],
        { cwd: root, encoding: "utf8" },
      );
      return { code: out.status, stderr: out.stderr };
    };
    const plan = [
      arm("global", { seed: 2, group: 32 }),
      arm("global-z-no-divk", { z_norm: "st_moe" }),
      arm("loss-free-recentred", { alpha: 0, group: 1, bias_rule: "sign-recentred", bias_rate: 0.001 }),
    ];

    // 1. every arm trained, evaluated and published, with its arm and seed named
    const first = campaign(plan);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stderr, /3 arms, 0 published, 3 to run/);
    assert.match(first.stderr, /CPU-hours of training left/);
    for (const [run, name, seed] of [
      ["global.seed2", "global", 2],
      ["global-z-no-divk", "global-z-no-divk", 1],
      ["loss-free-recentred", "loss-free-recentred", 1],
    ] as const) {
      const metrics = JSON.parse(readFileSync(join(paths.metrics, `${run}.json`), "utf8"));
      assert.equal(metrics.arm, name);
      assert.equal(metrics.seed, seed);
      assert.equal(metrics.torch_seed, 1234 + seed - 1, "seed s trains from torch seed 1234 + s - 1");
      const log = readFileSync(join(paths.logs, `${run}.jsonl`), "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l));
      assert.deepEqual(
        log.map((r) => r.step),
        [0, 1],
      );
      assert.ok(
        Number.isFinite(log[1].router_entropy) &&
          Number.isFinite(log[1].lse_p99) &&
          Number.isFinite(log[1].router_logit_max),
      );
    }
    // the recentred sign rule moved the bias
    const recentred = readFileSync(join(paths.logs, "loss-free-recentred.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    assert.ok(recentred[1].bias_abs_max > 0);
    // z-loss without ÷k: the same seed's first step is the global arm's (same init and batch), the loss differs
    const noDivK = readFileSync(join(paths.logs, "global-z-no-divk.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    assert.ok(noDivK[0].z_st_moe > 0);

    // 2. a second run publishes nothing again
    const before = statSync(join(paths.metrics, "global.seed2.json")).mtimeMs;
    const second = campaign(plan);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stderr, /3 arms, 3 published, 0 to run/);
    assert.equal(
      statSync(join(paths.metrics, "global.seed2.json")).mtimeMs,
      before,
      "a finished arm is never retrained",
    );

    // 3. an interrupted arm resumes where it stopped, to exactly the numbers of an uninterrupted run
    const interrupted = arm("global", { seed: 3 });
    const trainOne = spawnSync(
      python,
      [
        "data/recipe/train.py",
        "--arm-config",
        writeArm(dir, interrupted),
        "--small",
        "--tokens",
        "16384",
        "--corpus",
        corpus,
        "--runs",
        paths.runs,
        "--threads",
        "1",
        "--stop-after",
        "1",
      ],
      { cwd: root, encoding: "utf8" },
    );
    assert.equal(trainOne.status, 0, trainOne.stderr);
    assert.match(trainOne.stderr, /stopped after step 1 of 2/);
    // a line half-written when the process died must not break the resume
    writeFileSync(
      join(paths.runs, "global.seed3", "log.jsonl"),
      readFileSync(join(paths.runs, "global.seed3", "log.jsonl"), "utf8") + '{"step": 1, "ce": 3.',
    );
    const resumed = campaign([interrupted], "--plan");
    assert.match(resumed.stderr, /global\.seed3: train from step 1\/2/);
    assert.equal(campaign([interrupted]).code, 0);
    const uninterrupted = arm("global-again", { seed: 3 });
    assert.equal(campaign([uninterrupted]).code, 0);
    const a = readFileSync(join(paths.logs, "global.seed3.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    const b = readFileSync(join(paths.logs, "global-again.seed3.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    assert.equal(a.length, 2);
    for (const key of ["ce", "lbl_global", "z_st_moe", "max_vio_global"])
      assert.equal(a[1][key], b[1][key], `${key} after resuming equals the uninterrupted run`);

    // 4. what the runner refuses, naming the arm
    const unknownRule = campaign([arm("odd", { alpha: 0, bias_rule: "pid", bias_rate: 0.001 })]);
    assert.notEqual(unknownRule.code, 0);
    assert.match(unknownRule.stderr, /arm 'odd': unknown bias rule 'pid'/);
    const collision = campaign([arm("twice"), arm("twice", { alpha: 0.1 })]);
    assert.notEqual(collision.code, 0);
    assert.match(collision.stderr, /arm 'twice' seed 1: run id 'twice' is taken twice/);
    const shippedName = campaign([arm("micro", { alpha: 0.5, group: 1 })]);
    assert.match(shippedName.stderr, /the shipped name 'micro' with another config/);
    // a run folder that holds another arm's run: refused, not mixed
    const other = arm("mixed");
    mkdirSync(join(paths.runs, "mixed"), { recursive: true });
    writeFileSync(join(paths.runs, "mixed", "arm.json"), JSON.stringify({ ...other, alpha: 0.1 }));
    const mixed = campaign([other]);
    assert.notEqual(mixed.code, 0);
    assert.match(mixed.stderr, /skipping mixed: .* holds another config/);
    // a corrupt state file: the arm fails with its name and the reason; it is not restarted from step 0
    const corrupt = arm("corrupt");
    mkdirSync(join(paths.runs, "corrupt"), { recursive: true });
    writeFileSync(join(paths.runs, "corrupt", "state.pt"), "not a torch file");
    const broken = campaign([corrupt]);
    assert.notEqual(broken.code, 0);
    assert.match(
      broken.stderr,
      /FAILED corrupt: training exited with 1: train\.py: corrupt: cannot resume from .*state\.pt/,
    );
    assert.equal(existsSync(join(paths.metrics, "corrupt.json")), false);
    // metrics published under a name by another config: reported, never overwritten
    writeFileSync(join(paths.metrics, "clash.json"), JSON.stringify({ arm_config: arm("clash", { alpha: 0.3 }) }));
    const clash = campaign([arm("clash")]);
    assert.match(clash.stderr, /skipping clash: .*clash\.json holds another config/);
    rmSync(dir, { recursive: true, force: true });
  },
);

function writeArm(dir: string, config: object): string {
  const path = join(dir, `arm-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(path, JSON.stringify(config));
  return path;
}
