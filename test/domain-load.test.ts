// Expert load by domain, against counts worked by hand.
import { test } from "node:test";
import assert from "node:assert/strict";
import { loadByDomain } from "../src/lib/domain-load.js";
import { summarize } from "../src/lib/summary.js";
import { assertClose } from "./helpers.js";

test("each (layer, domain) row is that domain's share of slots per expert", () => {
  // 1 layer, 3 experts, top-1; sequences: code [e0, e0], prose [e2], code [e1]
  const rows = [
    [5, 0, 0],
    [5, 0, 0],
    [0, 0, 5],
    [0, 5, 0],
  ];
  const summary = summarize({ data: Float64Array.from(rows.flat()), layers: 1, tokens: 4, experts: 3 }, 1, [2, 1, 1]);
  const { shares, labels, rows: n } = loadByDomain(summary, ["code", "prose", "code"], ["code", "prose", "math"]);
  assert.equal(n, 3);
  assert.deepEqual(labels, ["L0 code", "L0 prose", "L0 math"]);
  [2 / 3, 1 / 3, 0].forEach((v, e) => assertClose(shares[e], v, 1e-15, `code ${e}`, 1e-15));
  [0, 0, 1].forEach((v, e) => assertClose(shares[3 + e], v, 1e-15, `prose ${e}`, 1e-15));
  assert.deepEqual(Array.from(shares.subarray(6)), [0, 0, 0], "a domain with no sequence");
  assert.throws(() => loadByDomain(summary, ["code"], ["code"]), /1 domain labels for 3 sequences/);
});
