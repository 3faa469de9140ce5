// The training recipe computes the losses the ablation's curves show; this
// checks its functions (data/recipe/train.py, through recipe_losses.py)
// against the TypeScript library on the same router logits.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { normalGenerator } from "../../src/lib/random.js";
import { summarize } from "../../src/lib/summary.js";
import { lossRecord } from "../../src/lib/losses/index.js";
import { python, root, missingRecipeTools } from "./smoke-corpus.js";

const missing = missingRecipeTools(["torch"]);

test("the recipe's logged losses equal the library's on the same router logits", { skip: missing || false }, () => {
  const [L, B, S, E, k] = [3, 8, 24, 16, 4];
  const normal = normalGenerator(42);
  const skew = Array.from({ length: L * E }, () => 1.5 * normal());
  const data = Float64Array.from(
    { length: L * B * S * E },
    (_, i) => skew[Math.floor(i / (B * S * E)) * E + (i % E)] + normal(),
  );
  const nested = Array.from({ length: L }, (_, l) =>
    Array.from({ length: B }, (_, b) =>
      Array.from({ length: S }, (_, s) =>
        Array.from(data.subarray(((l * B + b) * S + s) * E, ((l * B + b) * S + s + 1) * E)),
      ),
    ),
  );
  for (const group of [1, 2, B]) {
    const out = spawnSync(python, ["data/recipe/recipe_losses.py"], {
      cwd: root,
      input: JSON.stringify({ router_logits: nested, top_k: k, group }),
      encoding: "utf8",
    });
    assert.equal(out.status, 0, out.stderr);
    const recipe = JSON.parse(out.stdout);
    const summary = summarize({ data, layers: L, tokens: B * S, experts: E }, k, new Array(B).fill(S));
    const one = lossRecord(summary, 1);
    const grouped = lossRecord(summary, group);
    // 1e-6: the recipe counts slots in float32 (scatter_add on float32 zeros), as it trains
    const close = (a: number, b: number, what: string) =>
      assert.ok(Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(b)), `${what}: recipe ${a}, library ${b}`);
    close(recipe.lbl_sequence, one.lbl.sequence, "lbl_sequence = lbl.sequence");
    close(recipe.lbl_switch, one.lbl.switch, "lbl_switch = lbl.switch");
    // f over the whole batch, P per sequence: with equal sequences this is the whole-batch Switch value
    close(recipe.lbl_global, one.lbl.global, "lbl_global = lbl.global");
    close(
      recipe.lbl_group,
      grouped.lbl.micro_batch,
      `lbl_group (${group} sequences per f group) = lbl.micro_batch with m = ${group}`,
    );
    close(recipe.z_st_moe, one.z_loss.st_moe, "z_st_moe = z_loss.st_moe");
    close(recipe.z_olmoe, one.z_loss.olmoe, "z_olmoe = z_loss.olmoe");
    close(recipe.max_vio_global, one.max_vio.global, "max_vio_global = max_vio.global");
    close(recipe.max_vio_micro, one.max_vio.micro_batch, "max_vio_micro = max_vio.micro_batch (m = 1)");
    close(recipe.router_logit_max, summary.maxLogit, "largest router logit");
  }
});
