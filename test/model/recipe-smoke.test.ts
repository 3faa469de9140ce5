// The whole OLMoE-mini recipe at toy scale, so that it cannot rot: a corpus
// from the committed samples, the TypeScript tokenizer, two training steps of
// every strategy in PyTorch, ONNX export, and parity of onnxruntime-node and
// onnxruntime-web (WASM) with PyTorch's outputs.
// Needs Debian's python3-torch and python3-onnx (.ci/run installs them); on a
// machine without them the test says so and skips, except in CI, where it fails.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { firstRows, maxAbsDifference, runModel, runtimes, type Reference } from "./onnx-runners.js";
import { makeSmokeCorpus, python, root, missingRecipeTools } from "./smoke-corpus.js";
import { olmoeMini } from "../../src/lib/model/olmoe-mini.js";

const missing = missingRecipeTools(["torch", "onnx"]);

test(
  "recipe smoke run: corpus → tokenizer → train (4 strategies) → ONNX → parity",
  { skip: missing || false, timeout: 30 * 60_000 },
  async () => {
    const { dir, corpus } = makeSmokeCorpus("moe-lab-smoke-");
    const run = (command: string, args: string[]) =>
      execFileSync(command, args, {
        cwd: root,
        encoding: "utf8",
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...process.env, MOE_LAB_RUNS: join(dir, "runs") },
      });
    assert.equal(JSON.parse(readFileSync(join(dir, "tokenizer.json"), "utf8")).vocabSize, 400);

    for (const strategy of olmoeMini.checkpoints) {
      run(python, [
        "data/recipe/train.py",
        "--strategy",
        strategy,
        "--tokens",
        "16384",
        "--small",
        "--corpus",
        corpus,
        "--threads",
        "1",
      ]);
      const log = readFileSync(join(dir, "runs", strategy, "log.jsonl"), "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l));
      assert.equal(log.length, 2, `${strategy}: two steps logged`);
      for (const key of [
        "ce",
        "lbl_switch",
        "lbl_sequence",
        "lbl_global",
        "z_olmoe",
        "max_vio_global",
        "max_vio_micro",
      ])
        assert.ok(Number.isFinite(log[1][key]), `${strategy}: ${key}`);
      assert.equal(log[0].load.length, 2, "per-layer load logged");
    }
    // A rerun resumes from the saved state instead of training again.
    run(python, [
      "data/recipe/train.py",
      "--strategy",
      "micro",
      "--tokens",
      "16384",
      "--small",
      "--corpus",
      corpus,
      "--threads",
      "1",
    ]);
    assert.equal(
      readFileSync(join(dir, "runs", "micro", "log.jsonl"), "utf8")
        .trim()
        .split("\n").length,
      2,
    );

    // The exported MoE formulation equals the training one, balanced and collapsed.
    run(python, ["data/recipe/check_paths.py"]);

    const model = join(dir, "micro.onnx");
    run(python, [
      "data/recipe/export.py",
      "--state",
      join(dir, "runs", "micro", "state.pt"),
      "--out",
      model,
      "--corpus",
      corpus,
    ]);
    assert.ok(statSync(model).size > 1000);
    const reference: Reference = JSON.parse(readFileSync(model.replace(".onnx", ".reference.json"), "utf8"));
    assert.deepEqual([...new Set(reference.domains)].sort(), ["code", "prose"]);
    const expected = reference.router_logits.flat(3);
    for (const runtime of runtimes) {
      const out = await runModel(runtime, model, reference.input_ids);
      assert.deepEqual(out.routerDims, [2, reference.input_ids.length, reference.input_ids[0].length, 8]);
      assert.deepEqual(out.bias && [...out.bias], reference.expert_bias?.flat(), "expert_bias output");
      const difference = maxAbsDifference(out.router, expected);
      assert.ok(difference < 1e-3, `${runtime}: router logits differ from PyTorch by ${difference}`);
      const logitsDifference = maxAbsDifference(
        firstRows(out.logits, out.logitsDims, 4),
        reference.logits_first_rows.flat(2),
      );
      assert.ok(logitsDifference < 1e-3, `${runtime}: logits differ from PyTorch by ${logitsDifference}`);
    }

    const metrics = JSON.parse(
      run(python, [
        "data/recipe/evaluate.py",
        "--runs",
        join(dir, "runs"),
        "--corpus",
        corpus,
        "--out",
        join(dir, "metrics"),
        "micro",
        "none",
      ]),
    );
    for (const strategy of ["micro", "none"]) {
      assert.ok(metrics[strategy].perplexity.code > 1 && Number.isFinite(metrics[strategy].perplexity.prose));
      assert.ok(metrics[strategy].bits >= 0 && metrics[strategy].bits <= 1);
    }
  },
);
