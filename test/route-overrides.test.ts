import { test } from "node:test";
import assert from "node:assert/strict";
import {
  hashedNoise,
  nextTokenReadout,
  overrideFeeds,
  overrideProblem,
  ownRoute,
  type OverrideShape,
} from "../src/lib/model/route-overrides.js";

const shape: OverrideShape = { layers: 3, topK: 8, experts: 64, width: 96 };

class FakeTensor {
  constructor(
    readonly type: string,
    readonly data: BigInt64Array | Float32Array,
    readonly dims: readonly number[],
  ) {}
}

test("overrideProblem: a route the graph can take passes; each bad one gets a sentence", () => {
  const route = ownRoute(3, 2, 5, 8);
  assert.equal(overrideProblem({ forcedExperts: route }, shape, 2, 5), null);
  // broadcast over batch and sequence
  assert.equal(overrideProblem({ forcedExperts: ownRoute(3, 1, 1, 8) }, shape, 2, 5), null);
  assert.match(
    overrideProblem({ forcedExperts: ownRoute(3, 2, 4, 8) }, shape, 2, 5)!,
    /shape \[3, 2, 4, 8\].*\[3, 2 or 1, 5 or 1, 8\]/,
  );
  assert.match(overrideProblem({ forcedExperts: ownRoute(2, 2, 5, 8) }, shape, 2, 5)!, /shape/);
  const out = ownRoute(3, 2, 5, 8);
  out.data[17] = 64;
  assert.match(overrideProblem({ forcedExperts: out }, shape, 2, 5)!, /expert 64 is out of range.*0–63/);
  const negative = ownRoute(3, 2, 5, 8);
  negative.data[3] = -2;
  assert.match(overrideProblem({ forcedExperts: negative }, shape, 2, 5)!, /out of range/);
  const twice = ownRoute(3, 2, 5, 8);
  twice.data[8] = 7;
  twice.data[12] = 7;
  assert.match(overrideProblem({ forcedExperts: twice }, shape, 2, 5)!, /expert 7 is forced twice/);
  // the same expert in two different tokens is fine
  const twoTokens = ownRoute(3, 2, 5, 8);
  twoTokens.data[0] = 7;
  twoTokens.data[8] = 7;
  assert.equal(overrideProblem({ forcedExperts: twoTokens }, shape, 2, 5), null);
  const short = { data: new Int32Array(5), dims: [3, 2, 5, 8] };
  assert.match(overrideProblem({ forcedExperts: short }, shape, 2, 5)!, /holds 5 values/);
  const noise = { data: new Float32Array(3 * 96).fill(NaN), dims: [3, 1, 1, 96] };
  assert.match(overrideProblem({ routerInputNoise: noise }, shape, 2, 5)!, /not a finite number/);
  assert.match(
    overrideProblem({ routerInputNoise: { data: new Float32Array(3 * 95), dims: [3, 1, 1, 95] } }, shape, 2, 5)!,
    /perturbation has shape/,
  );
});

test("overrideFeeds: no-override values for a full graph, nothing for a router-only one, a refusal for an override it cannot take", () => {
  const full = ["input_ids", "forced_experts", "router_input_noise", "router_bf16"];
  const feeds = overrideFeeds(FakeTensor, full, shape);
  assert.deepEqual(feeds.forced_experts.dims, [3, 1, 1, 8]);
  assert.ok(Array.from(feeds.forced_experts.data as BigInt64Array).every((v) => v === -1n));
  assert.deepEqual(feeds.router_input_noise.dims, [3, 1, 1, 96]);
  assert.ok((feeds.router_input_noise.data as Float32Array).every((v) => v === 0));
  assert.deepEqual(Array.from(feeds.router_bf16.data as Float32Array), [0]);
  const withBf16 = overrideFeeds(FakeTensor, full, shape, { routerBf16: true });
  assert.deepEqual(Array.from(withBf16.router_bf16.data as Float32Array), [1]);
  const route = ownRoute(3, 1, 4, 8);
  route.data[5] = 12;
  const forced = overrideFeeds(FakeTensor, full, shape, { forcedExperts: route });
  assert.equal((forced.forced_experts.data as BigInt64Array)[5], 12n);
  assert.deepEqual(overrideFeeds(FakeTensor, ["input_ids"], shape), {});
  assert.throws(
    () => overrideFeeds(FakeTensor, ["input_ids"], shape, { routerBf16: true }),
    /takes no route override.*full graph/,
  );
});

test("hashedNoise equals export.py's hashed_noise (values printed by numpy)", () => {
  const expected = [-0.001, 0.00023606798, -0.00052786403, 0.00070820394, -5.5728106e-5, -0.00081966014];
  const got = hashedNoise(6, 1e-3);
  // numpy prints float32 in its shortest round-trip form: fround gives back the very float32
  for (let i = 0; i < 6; i++) assert.equal(got[i], Math.fround(expected[i]), `${i}`);
  // far into the index range, where i·2654435761 needs 51 bits
  assert.equal(hashedNoise(1_000_004, 1e-3)[1_000_003], Math.fround(0.0006817468674853444));
  assert.throws(() => hashedNoise(4_000_000, 1), /exact integer range/);
});

test("nextTokenReadout: log-softmax of the next input token and the top predictions, by brute force", () => {
  const [B, S, V] = [2, 3, 7];
  const logits = Float32Array.from({ length: B * S * V }, (_, i) => Math.sin(i * 1.7) * 3);
  const ids = [1, 4, 6, 0, 2, 5];
  const readout = nextTokenReadout(logits, [B, S, V], ids, 3);
  for (let row = 0; row < B * S; row++) {
    const values = Array.from(logits.subarray(row * V, (row + 1) * V));
    const lse = Math.log(values.reduce((a, v) => a + Math.exp(v), 0));
    if (row % S === S - 1) assert.ok(Number.isNaN(readout.logProbs[row]), "no next token after a sequence's end");
    else assert.ok(Math.abs(readout.logProbs[row] - (values[ids[row + 1]] - lse)) < 1e-5);
    const order = values.map((v, i) => [v, i]).sort((a, b) => b[0] - a[0]);
    for (let j = 0; j < 3; j++) {
      assert.equal(readout.topIds[row * 3 + j], order[j][1]);
      assert.ok(Math.abs(readout.topLogProbs[row * 3 + j] - (order[j][0] - lse)) < 1e-5);
    }
  }
});
