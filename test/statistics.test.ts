// The statistics behind every comparison of trained arms, on cases computed
// by hand (and t quantiles from the standard tables).
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  bootstrapPerplexity,
  meanSd,
  pairedInterval,
  quantileSorted,
  studentTCdf,
  studentTQuantile,
  tInterval,
  verdict,
} from "../src/lib/statistics.js";
import { assertClose } from "./helpers.js";

test("mean and sample standard deviation", () => {
  const s = meanSd([1, 2, 3, 4]);
  assert.equal(s.mean, 2.5);
  assertClose(s.sd, Math.sqrt(5 / 3), 1e-12, "sd with n − 1");
  assert.ok(Number.isNaN(meanSd([7]).sd), "one value has no sd");
  assert.ok(Number.isNaN(meanSd([]).mean));
});

test("Student t quantiles match the tables", () => {
  // two-sided 95 % critical values
  for (const [df, value] of [
    [1, 12.7062],
    [2, 4.3027],
    [3, 3.1824],
    [5, 2.5706],
    [10, 2.2281],
    [30, 2.0423],
    [1000, 1.9623],
  ] as const) {
    assertClose(studentTQuantile(0.975, df), value, 1e-4, `t(0.975, ${df})`);
  }
  assertClose(studentTQuantile(0.95, 4), 2.1318, 1e-4, "t(0.95, 4)");
  assertClose(studentTQuantile(0.025, 2), -4.3027, 1e-4, "lower tail by symmetry");
  assertClose(studentTCdf(0, 7), 0.5, 1e-15, "centre");
  // df = 1 is the Cauchy distribution: CDF(t) = 1/2 + atan(t)/π
  for (const t of [-3, -0.5, 0.25, 2, 40])
    assertClose(studentTCdf(t, 1), 0.5 + Math.atan(t) / Math.PI, 1e-12, `Cauchy CDF at ${t}`);
  // df = 2 has a closed form: CDF(t) = 1/2 + t / (2 √(t² + 2))
  for (const t of [-2, 0.7, 5])
    assertClose(studentTCdf(t, 2), 0.5 + t / (2 * Math.sqrt(t * t + 2)), 1e-12, `t2 CDF at ${t}`);
});

test("paired differences over the seeds both arms have, with a 95 % t interval", () => {
  const a = new Map([
    [1, 10],
    [2, 12],
    [3, 11],
  ]);
  const b = new Map([
    [1, 9],
    [2, 10],
    [3, 10],
    [4, 0],
  ]); // seed 4 has no partner: left out
  const d = pairedInterval(a, b);
  assert.deepEqual(d.seeds, [1, 2, 3]);
  assert.equal(d.n, 3);
  assertClose(d.mean, 4 / 3, 1e-12, "mean of 1, 2, 1");
  const half = (4.302652729911275 * Math.sqrt(1 / 3)) / Math.sqrt(3);
  assertClose(d.low!, 4 / 3 - half, 1e-9, "low");
  assertClose(d.high!, 4 / 3 + half, 1e-9, "high");
  const single = pairedInterval(new Map([[1, 3]]), new Map([[1, 1]]));
  assert.equal(single.mean, 2);
  assert.equal(single.low, null, "one seed gives no interval");
  assert.equal(tInterval([5, 5, 5]).low, 5, "no spread, no width");
});

test("verdicts follow the interval, never the bare mean", () => {
  assert.equal(verdict({ low: -0.3, high: -0.1 }, "lower"), "consistent with the paper");
  assert.equal(verdict({ low: 0.1, high: 0.3 }, "lower"), "contradicts the paper");
  assert.equal(verdict({ low: -0.3, high: 0.1 }, "lower"), "not resolved at this scale");
  assert.equal(verdict({ low: 0.1, high: 0.3 }, "higher"), "consistent with the paper");
  assert.equal(verdict({ low: null, high: null }, "lower"), "not resolved at this scale", "one seed decides nothing");
  // a mean far from zero with a wide interval is still unresolved
  const wide = pairedInterval(
    new Map([
      [1, 0],
      [2, 10],
    ]),
    new Map([
      [1, 1],
      [2, 1],
    ]),
  );
  assert.ok(wide.mean > 0);
  assert.equal(verdict(wide, "higher"), "not resolved at this scale");
});

test("quantiles interpolate between order statistics (numpy's default)", () => {
  const sorted = [1, 2, 3, 4, 5];
  assert.equal(quantileSorted(sorted, 0), 1);
  assert.equal(quantileSorted(sorted, 0.5), 3);
  assert.equal(quantileSorted(sorted, 0.1), 1.4);
  assert.equal(quantileSorted(sorted, 1), 5);
});

test("the held-out bootstrap resamples whole documents of one domain", () => {
  // every document has 2 nats per token: any resample gives perplexity e²
  const flat = { nll: [2, 4, 6, 100], tokens: [1, 2, 3, 10], domain: [0, 0, 0, 1] };
  const b = bootstrapPerplexity(flat, 0, { resamples: 200 });
  assertClose(b.perplexity, Math.exp(2), 1e-12, "point estimate");
  assertClose(b.low, Math.exp(2), 1e-12, "low");
  assertClose(b.high, Math.exp(2), 1e-12, "high");
  assert.equal(b.documents, 3, "the prose document is not drawn for code");
  assertClose(bootstrapPerplexity(flat, 1).perplexity, Math.exp(10), 1e-9, "the other domain");
  // unequal documents: the interval holds the estimate, is reproducible by seed and narrows with more documents
  const docs = (n: number) => ({
    nll: Array.from({ length: n }, (_, i) => 100 * (3 + (i % 7) / 7)),
    tokens: Array.from({ length: n }, () => 100),
    domain: Array.from({ length: n }, () => 0),
  });
  const few = bootstrapPerplexity(docs(20), 0, { seed: 3 });
  const many = bootstrapPerplexity(docs(500), 0, { seed: 3 });
  assert.ok(few.low < few.perplexity && few.perplexity < few.high);
  assert.deepEqual(bootstrapPerplexity(docs(20), 0, { seed: 3 }), few, "same seed, same interval");
  assert.ok(
    many.high - many.low < (few.high - few.low) / 2,
    `500 documents narrow the interval: ${many.high - many.low} vs ${few.high - few.low}`,
  );
  assert.throws(() => bootstrapPerplexity(flat, 2), /no held-out document/);
});
