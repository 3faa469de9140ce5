// OLMoE-mini's facts are written once, in src/lib/model/olmoe-mini.json: the
// Python recipe reads the same file (data/recipe/facts.py), and its training
// script and arm definitions take their model, context and strategies from it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { olmoeMini } from "../../src/lib/model/olmoe-mini.js";
import { python, root, missingRecipeTools } from "./smoke-corpus.js";

const missing = missingRecipeTools(["torch", "numpy"]);

test("the recipe's model, context, batch and strategies are the site's facts", { skip: missing || false }, () => {
  const script = [
    "import json, sys",
    "sys.path.insert(0, 'data/recipe')",
    "import arms, facts, train, evaluate",
    "print(json.dumps({'model': train.MODEL, 'sequence': train.SEQUENCE, 'batch': train.BATCH_SEQUENCES, 'arms_batch': arms.BATCH_SEQUENCES,",
    "                  'strategies': list(arms.STRATEGIES), 'window': evaluate.WINDOW}))",
  ].join("\n");
  const out = spawnSync(python, ["-c", script], { cwd: root, encoding: "utf8" });
  assert.equal(out.status, 0, out.stderr);
  const recipe = JSON.parse(out.stdout);
  assert.deepEqual(recipe, {
    model: olmoeMini.architecture,
    sequence: olmoeMini.context,
    batch: olmoeMini.batchSequences,
    arms_batch: olmoeMini.batchSequences,
    strategies: olmoeMini.checkpoints,
    window: olmoeMini.context,
  });
});
