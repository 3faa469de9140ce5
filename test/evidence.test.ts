// Comparisons of trained arms as the pages state them: from paired seeds only.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  bySeed,
  compare,
  describeInterval,
  measures,
  movingAverage,
  pairedCurves,
  type Run,
} from "../src/components/evidence.js";
import { assertClose } from "./helpers.js";

const run = (arm: string, seed: number, code: number, bits: number, ce: number[] = []): Run => ({
  run: `${arm}.seed${seed}`,
  arm,
  seed,
  config: null,
  metrics: { perplexity: { code, prose: 100 }, maxVio: 0.5, bits, deadExperts: 0, router: null },
  bootstrap: null,
  curve: ce.map((value, step) => ({ step, tokens: (step + 1) * 8192, ce: value })),
});

test("comparisons pair seeds and judge by the interval", () => {
  const runs = [
    run("a", 1, 40, 0.1),
    run("a", 2, 41, 0.12),
    run("a", 3, 40.5, 0.11),
    run("b", 1, 42, 0.05),
    run("b", 2, 43, 0.06),
    run("b", 3, 42.2, 0.04),
    run("b", 4, 10, 9),
  ];
  assert.deepEqual([...bySeed(runs, "b", measures.bits).keys()], [1, 2, 3, 4]);
  const bits = compare(runs, "a", "b", measures.bits, "higher", "a specialises more");
  assert.deepEqual(bits.interval.seeds, [1, 2, 3], "seed 4 has no partner");
  assertClose(bits.interval.mean, (0.05 + 0.06 + 0.07) / 3, 1e-12, "mean of per-seed differences");
  assert.equal(bits.verdict, "consistent with the paper");
  const ppl = compare(runs, "a", "b", measures.pplCode, "lower");
  assertClose(
    ppl.interval.mean,
    (Math.log(40 / 42) + Math.log(41 / 43) + Math.log(40.5 / 42.2)) / 3,
    1e-12,
    "perplexities compare as log ratios",
  );
  assert.match(describeInterval(ppl), /^−4\.\d\d % \[95 % interval −\d\.\d\d %, −\d\.\d\d %\] over 3 paired seeds$/);
  // one seed: a difference, but no interval and no verdict
  const single = compare([run("a", 1, 40, 0.1), run("b", 1, 42, 0.05)], "a", "b", measures.bits, "higher", "x");
  assert.equal(single.verdict, "not resolved at this scale");
  assert.match(describeInterval(single), /on the one seed both arms have \(no interval from one seed\)/);
  assert.equal(compare(runs, "a", "missing", measures.bits).verdict, "no difference resolved at this scale");
  assert.match(describeInterval(compare(runs, "a", "missing", measures.bits)), /no seed trained for both arms yet/);
});

test("paired training curves: per-seed differences at the same steps, smoothed", () => {
  assert.deepEqual(movingAverage([1, 2, 3, 4, 5], 3), [1.5, 2, 3, 4, 4.5]);
  const runs = [run("a", 1, 40, 0, [5, 4, 3]), run("b", 1, 40, 0, [6, 4, 4]), run("a", 2, 40, 0, [5, 5, 5])];
  const d = pairedCurves(runs, "a", "b", "ce", 1);
  assert.deepEqual(
    d.map((p) => p.difference),
    [-1, 0, -1],
    "only seed 1 has both arms",
  );
  assert.deepEqual(
    d.map((p) => p.seed),
    [1, 1, 1],
  );
});

test("trade-off points: one sweep's arms at seed 1 with their settings; f-group points only for arms that differ in the group alone", async () => {
  const { sweepPoints, groupPoints } = await import("../src/components/evidence.js");
  const withConfig = (arm: string, seed: number, config: Record<string, unknown>, maxVio: number, code = 40): Run => ({
    ...run(arm, seed, code, 0.1),
    config,
    metrics: { ...run(arm, seed, code, 0.1).metrics, maxVio },
  });
  const base = { alpha: 0.01, beta: 0.001, z_norm: "olmoe", bias_rule: null, bias_rate: 0 };
  const runs = [
    withConfig("micro", 1, { ...base, group: 1 }, 0.8),
    withConfig("micro", 2, { ...base, group: 1 }, 0.7),
    withConfig("micro-alpha1e-3", 1, { ...base, alpha: 0.001, group: 1 }, 1.5),
    withConfig("micro-alpha1e-1", 1, { ...base, alpha: 0.1, group: 1 }, 0.2, 44),
    withConfig("global", 1, { ...base, group: 32 }, 0.9),
    withConfig("lbl-group4", 1, { ...base, group: 4 }, 0.85),
    withConfig("global-z-no-divk", 1, { ...base, z_norm: "st_moe", group: 32 }, 0.8),
    withConfig("loss-free", 1, { ...base, alpha: 0, bias_rule: "sign", bias_rate: 0.001, group: 1 }, 0.4),
    withConfig("loss-free-u1e-2", 1, { ...base, alpha: 0, bias_rule: "sign", bias_rate: 0.01, group: 1 }, 0.3),
  ];
  const alpha = sweepPoints(runs, "micro-alpha", "micro");
  assert.deepEqual(
    alpha.map((p) => p.setting),
    ["α=0.1", "α=0.01", "α=0.001"],
    "seed 1 only, sorted by MaxVio",
  );
  assertClose(alpha[0].ppl, Math.sqrt(44 * 100), 1e-12, "geometric mean of domains");
  assert.deepEqual(
    sweepPoints(runs, "loss-free-", "loss-free").map((p) => p.setting),
    ["sign u=0.01", "sign u=0.001"],
  );
  assert.deepEqual(
    groupPoints(runs).map((p) => [p.arm, p.group]),
    [
      ["micro", 1],
      ["lbl-group4", 4],
      ["global", 32],
    ],
    "no z-loss or α variant, no bias",
  );
});

test("the claims the ablation page and the model card state name real measures, and compare over paired seeds", async () => {
  const { compareClaims, paperClaims, zLossClaims } = await import("../src/components/evidence.js");
  for (const spec of [...paperClaims, ...zLossClaims])
    assert.ok(measures[spec.measure], `${spec.arm}: ${spec.measure}`);
  const runs = [
    run("global", 1, 40, 0.2),
    run("global", 2, 41, 0.21),
    run("micro", 1, 40, 0.1),
    run("micro", 2, 41.5, 0.12),
  ];
  const [bits] = compareClaims(runs, paperClaims);
  assert.equal(bits.arm, "global");
  assert.equal(bits.interval.n, 2);
  assert.throws(() => compareClaims(runs, [{ arm: "a", reference: "b", measure: "nope" }]), /no measure named nope/);
});
