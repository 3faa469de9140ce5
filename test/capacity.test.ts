// Capacity factor and token dropping against cases worked by hand from
// Megatron-LM's get_capacity and apply_router_token_dropping, and properties.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { applyCapacity, expertCapacity, switchLblFromLoad } from "../src/lib/capacity.js";
import { assertClose } from "./helpers.js";

test("capacity is ceil(T·k/E · CF)", () => {
  assert.equal(expertCapacity(10, 2, 4, 1), 5);
  assert.equal(expertCapacity(10, 2, 4, 1.25), 7); // 6.25 → 7
  assert.equal(expertCapacity(80, 8, 80, 2), 16);
  assert.equal(expertCapacity(10, 2, 4, Infinity), 10);
  assert.throws(() => expertCapacity(10, 2, 4, 0), /capacity factor must be a number > 0; got 0/);
});

test("probs keeps each expert's highest gates, position its earliest tokens", () => {
  // 4 tokens, top-1, 2 experts, CF 0.5 → capacity ceil(4/2·0.5) = 1; every token wants expert 0
  const chosen = [0, 0, 0, 0];
  const gates = [0.3, 0.9, 0.5, 0.9];
  const probs = applyCapacity(chosen, gates, 2, 1, 0.5, "probs");
  assert.equal(probs.capacity, 1);
  assert.deepEqual(Array.from(probs.kept), [0, 1, 0, 0], "the highest gate; a tie goes to the earlier token");
  const position = applyCapacity(chosen, gates, 2, 1, 0.5, "position");
  assert.deepEqual(Array.from(position.kept), [1, 0, 0, 0]);
  assert.equal(probs.droppedShare, 0.75);
  assert.equal(probs.tokensFullyDropped, 3);
  assert.deepEqual(Array.from(probs.loadBefore), [4, 0]);
  assert.deepEqual(Array.from(probs.loadAfter), [1, 0]);
  assert.throws(() => applyCapacity(chosen, gates, 2, 1, 1, "random" as "probs"), /unknown drop policy 'random'/);
});

test("the LBL counted after the drop reads low: the #1513 gap", () => {
  // every token on expert 0 with p = 0.9: before the drop f = (1, 0), after it (1/4, 0) of the T·k slots
  const probSum = [3.6, 0.4];
  const r = applyCapacity([0, 0, 0, 0], [0.9, 0.9, 0.9, 0.9], 2, 1, 0.5, "probs");
  assertClose(switchLblFromLoad(r.loadBefore, probSum, 4, 1), 2 * 1 * 0.9, 1e-15);
  assertClose(switchLblFromLoad(r.loadAfter, probSum, 4, 1), 2 * 0.25 * 0.9, 1e-15);
});

test("properties: no expert over capacity, nothing dropped when capacity holds every slot, dropping falls as CF grows", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 2, max: 8 }),
      fc.integer({ min: 1, max: 3 }),
      fc.array(fc.nat(), { minLength: 3, maxLength: 60 }),
      fc.constantFrom("probs", "position"),
      (experts, kWish, seeds, policy) => {
        const topK = Math.min(kWish, experts);
        const tokens = Math.floor(seeds.length / topK) || 1;
        // distinct experts per token, from the seeds
        const chosen: number[] = [];
        const gates: number[] = [];
        for (let t = 0; t < tokens; t++)
          for (let i = 0; i < topK; i++) {
            chosen.push(((seeds[t % seeds.length] ?? 0) + i) % experts);
            gates.push(((seeds[(t + i) % seeds.length] ?? 0) % 97) / 97);
          }
        let previous = Infinity;
        for (const cf of [0.25, 0.5, 1, 1.5, 2, experts / topK]) {
          const r = applyCapacity(chosen, gates, experts, topK, cf, policy as "probs");
          for (let e = 0; e < experts; e++) assert.ok(r.loadAfter[e] <= r.capacity);
          const keptPerExpert = new Array(experts).fill(0);
          chosen.forEach((e, s) => (keptPerExpert[e] += r.kept[s]));
          assert.deepEqual(keptPerExpert, Array.from(r.loadAfter));
          assert.ok(r.droppedShare <= previous + 1e-15);
          previous = r.droppedShare;
        }
        assert.equal(previous, 0, "CF = E/k gives capacity T: nothing dropped");
      },
    ),
  );
});

test("the streaming counter equals applyCapacity micro-batch by micro-batch, on the lab's route and a convention's", async () => {
  const { CapacityCounter } = await import("../src/lib/capacity-counter.js");
  const { summarize } = await import("../src/lib/summary.js");
  const { routeLayer } = await import("../src/lib/routed-layer.js");
  const { routingPresets } = await import("../src/lib/presets.js");
  const { olmoeConvention } = await import("../src/lib/conventions.js");
  const { normalGenerator } = await import("../src/lib/random.js");
  const normal = normalGenerator(11);
  const [layers, experts, k] = [2, 16, 4];
  const lengths = [30, 20, 25, 15, 10];
  const tokens = lengths.reduce((a, b) => a + b, 0);
  const data = Float64Array.from({ length: layers * tokens * experts }, (_, i) => normal() + (i % experts < 3 ? 1 : 0));
  for (const [name, convention] of [
    ["olmoe", undefined],
    ["deepseek-v3", routingPresets["deepseek-v3"].convention(k)],
  ] as const) {
    for (const policy of ["probs", "position"] as const) {
      const counter = new CapacityCounter({ layers, tokens, experts }, k, lengths, 2, 0.8, policy);
      const summary = summarize({ data, layers, tokens, experts }, k, lengths, {
        onRow: counter.onRow,
        ...(convention ? { convention } : {}),
      });
      const found = counter.finish(summary);
      for (let l = 0; l < layers; l++) {
        // independently: route the layer, cut it into micro-batches of 2 sequences, drop each
        const routed = routeLayer(
          data.subarray(l * tokens * experts, (l + 1) * tokens * experts),
          tokens,
          experts,
          convention ?? olmoeConvention(k),
        );
        const ends = [50, 90, 100];
        let start = 0;
        let dropped = 0;
        let lost = 0;
        const before = new Float64Array(experts);
        const after = new Float64Array(experts);
        for (const end of ends) {
          const r = applyCapacity(
            routed.chosen.subarray(start * k, end * k),
            routed.gates.subarray(start * k, end * k),
            experts,
            k,
            0.8,
            policy,
          );
          dropped += r.droppedShare * (end - start) * k;
          lost += r.tokensFullyDropped;
          r.loadBefore.forEach((c, e) => (before[e] += c));
          r.loadAfter.forEach((c, e) => (after[e] += c));
          start = end;
        }
        const what = `${name}, ${policy}, layer ${l}`;
        assertClose(found[l].droppedShare, dropped / (tokens * k), 1e-12, what);
        assert.ok(found[l].droppedShare > 0, `${what}: CF 0.8 drops something`);
        assertClose(found[l].tokensFullyDropped, lost / tokens, 1e-12, what);
        assertClose(found[l].lblBefore, switchLblFromLoad(before, routed.balanceSum, tokens, k), 1e-12, what);
        assertClose(found[l].lblAfter, switchLblFromLoad(after, routed.balanceSum, tokens, k), 1e-12, what);
        assert.ok(found[l].lblAfter < found[l].lblBefore, `${what}: dropped slots vanish from f`);
        // 50 tokens: ceil(50·4/16·0.8) = 10; 40: 8; 10: 2
        assert.deepEqual(found[l].capacity, [2, 10]);
      }
    }
  }
});
