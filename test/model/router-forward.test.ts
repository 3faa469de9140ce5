// The lab's own forward pass of a router-only graph (src/lib/model/router-forward.ts)
// against two independent implementations of the same checkpoints: onnxruntime-node
// running the same file, and PyTorch's router logits that export.py wrote beside it
// (`<checkpoint>.reference.json`). Then what it must refuse, and that a token's
// numbers do not depend on the sequences routed beside it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import * as ort from "onnxruntime-node";
import { splitWeights, type SplitModel } from "../../src/lib/model/onnx-weights.js";
import { halfTable, readRouterGraph, routerForward } from "../../src/lib/model/router-forward.js";
import { olmoeMini } from "../../src/lib/model/olmoe-mini.js";
import { maxAbsDifference, type Reference } from "./onnx-runners.js";
import { uniformGenerator } from "../../src/lib/random.js";
import { linearLanes, linearOn, type LinearKernelExports } from "../../src/lib/model/linear-kernel.js";
import { linearKernelWasm } from "../../src/lib/model/linear-kernel.wasm.js";

/** The WebAssembly SIMD matrix product, as the model worker runs it. */
const simd = linearOn(
  new WebAssembly.Instance(new WebAssembly.Module(linearKernelWasm)).exports as unknown as LinearKernelExports,
);

const models = fileURLToPath(new URL("../../data/models/", import.meta.url));
const routerPath = (checkpoint: string) => `${models}${checkpoint}.router.onnx`;
const missing = (checkpoint: string) =>
  existsSync(routerPath(checkpoint)) ? false : `${routerPath(checkpoint)} not exported yet`;
const split = (path: string): SplitModel => splitWeights(new Uint8Array(readFileSync(path)));

/** onnxruntime-node's router_logits and expert_bias for `ids` (batch × seq). */
async function onnxruntime(path: string, ids: Int32Array, batch: number, seq: number) {
  const session = await ort.InferenceSession.create(path);
  const out = await session.run({ input_ids: new ort.Tensor("int64", BigInt64Array.from(ids, BigInt), [batch, seq]) });
  return {
    router: out.router_logits.data as Float32Array,
    dims: [...out.router_logits.dims],
    bias: out.expert_bias.data as Float32Array,
  };
}

/** The top-k experts of each token in the layers whose choice feeds the next, as sorted lists. */
function chosenSets(router: Float32Array, bias: Float32Array, layers: number): string[] {
  const { experts, topK } = olmoeMini;
  const tokens = router.length / layers / experts;
  const sets: string[] = [];
  for (let layer = 0; layer < layers - 1; layer++)
    for (let t = 0; t < tokens; t++) {
      const at = (layer * tokens + t) * experts;
      const logits = router.subarray(at, at + experts);
      const max = Math.max(...logits);
      const sum = logits.reduce((s, l) => s + Math.exp(l - max), 0);
      const score = (e: number) => Math.exp(logits[e] - max) / sum + bias[layer * experts + e];
      const order = [...Array(experts).keys()].sort((a, b) => score(b) - score(a) || a - b);
      sets.push(
        order
          .slice(0, topK)
          .sort((a, b) => a - b)
          .join(),
      );
    }
  return sets;
}

/** Token ids drawn from the vocabulary by a seeded generator. */
function randomIds(count: number, vocab: number, seed: number): Int32Array {
  const random = uniformGenerator(seed);
  return Int32Array.from({ length: count }, () => Math.floor(random() * vocab));
}

for (const checkpoint of olmoeMini.checkpoints) {
  test(
    `${checkpoint}: the lab's forward pass reproduces onnxruntime-node's router logits, top-k and bias, and PyTorch's`,
    { skip: missing(checkpoint) },
    async () => {
      const path = routerPath(checkpoint);
      const graph = readRouterGraph(split(path), olmoeMini);
      const reference: Reference = JSON.parse(readFileSync(`${models}${checkpoint}.reference.json`, "utf8"));
      const cases: [string, Int32Array, number, number][] = [
        [
          "PyTorch's reference inputs",
          Int32Array.from(reference.input_ids.flat()),
          reference.input_ids.length,
          reference.input_ids[0].length,
        ],
        // An odd number of tokens (the blocked loops' tails) at nearly the whole context.
        ["3 × 255 random tokens", randomIds(3 * 255, graph.vocab, 7), 3, 255],
        ["one token", Int32Array.of(42), 1, 1],
      ];
      for (const [what, ids, batch, seq] of cases) {
        const ours = routerForward(graph, ids, batch, seq, simd);
        // The plain-JavaScript fallback computes the same numbers, bit for bit.
        assert.deepEqual(
          routerForward(graph, ids, batch, seq).router,
          ours.router,
          `${what}: WebAssembly = JavaScript`,
        );
        const theirs = await onnxruntime(path, ids, batch, seq);
        assert.deepEqual([...ours.dims], theirs.dims, `${what}: dims`);
        const difference = maxAbsDifference(ours.router, theirs.router);
        console.log(
          `${checkpoint}, ${what}: max |Δ router logits| against onnxruntime-node = ${difference.toExponential(2)}`,
        );
        assert.ok(difference < 1e-5, `${what}: ${difference} ≥ 1e-5`);
        assert.deepEqual(
          chosenSets(ours.router, graph.expertBias, olmoeMini.layers),
          chosenSets(theirs.router, theirs.bias, olmoeMini.layers),
          `${what}: every token's top-k`,
        );
        assert.deepEqual([...graph.expertBias], [...theirs.bias], "expert_bias, exactly");
      }
      // PyTorch computed the reference from the full-precision module: the file's float16 weights are within the
      // tolerance checkpoints.test.ts holds onnxruntime to.
      const [B, S] = [reference.input_ids.length, reference.input_ids[0].length];
      const ours = routerForward(graph, Int32Array.from(reference.input_ids.flat()), B, S, simd);
      const tolerance = reference.precision === "fp32" ? 1e-3 : 1e-2;
      const difference = maxAbsDifference(ours.router, reference.router_logits.flat(3));
      assert.ok(difference < tolerance, `against PyTorch: ${difference} ≥ ${tolerance}`);
    },
  );
}

const first = olmoeMini.checkpoints.find((c) => !missing(c));

test(
  "a token's router logits do not depend on the sequences routed beside it (bit for bit)",
  { skip: first ? false : "no router-only graph exported yet" },
  () => {
    const graph = readRouterGraph(split(routerPath(first!)), olmoeMini);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 24 }), fc.nat(), (batch, seq, seed) => {
        const ids = randomIds(batch * seq, graph.vocab, seed);
        const together = routerForward(graph, ids, batch, seq, simd).router;
        const { layers, experts } = olmoeMini;
        for (let b = 0; b < batch; b++) {
          const alone = routerForward(graph, ids.subarray(b * seq, (b + 1) * seq), 1, seq, simd).router;
          for (let layer = 0; layer < layers; layer++) {
            const inBatch = together.subarray(
              (layer * batch + b) * seq * experts,
              (layer * batch + b + 1) * seq * experts,
            );
            assert.deepEqual(alone.subarray(layer * seq * experts, (layer + 1) * seq * experts), inBatch);
          }
        }
      }),
      { numRuns: 25 },
    );
  },
);

test(
  "the file at any byte offset, and passes of any size in any order, give the same logits bit for bit",
  { skip: first ? false : "no router-only graph exported yet" },
  () => {
    // The weights are read where they lie in the file (a float32 weight at an odd offset too), and a pass
    // reuses the arrays of the pass before, longer or shorter: neither may change a bit.
    const file = new Uint8Array(readFileSync(routerPath(first!)));
    const sizes: [batch: number, seq: number][] = [
      [3, 200],
      [1, 5],
      [4, 256],
      [2, 17],
    ];
    const idsOf = ([batch, seq]: [number, number]) => randomIds(batch * seq, 4096, batch * 1000 + seq);
    const expected = sizes.map((size) =>
      routerForward(readRouterGraph(split(routerPath(first!)), olmoeMini), idsOf(size), ...size, simd),
    );
    for (let shift = 1; shift < 4; shift++) {
      const moved = new Uint8Array(file.length + shift).subarray(shift);
      moved.set(file);
      const graph = readRouterGraph(splitWeights(moved), olmoeMini);
      for (const order of [
        [0, 1, 2, 3],
        [2, 1, 3, 0],
      ])
        for (const i of order) {
          const { router, dims } = routerForward(graph, idsOf(sizes[i]), ...sizes[i], i % 2 ? linearLanes : simd);
          assert.deepEqual(dims, expected[i].dims);
          assert.ok(
            router.every((v, j) => Object.is(v, expected[i].router[j])),
            `offset ${shift}, ${sizes[i].join(" × ")}`,
          );
        }
    }
  },
);

test(
  "a file that is not the router-only graph it computes is refused, with the reason",
  { skip: first ? false : "no router-only graph exported yet" },
  () => {
    const router = split(routerPath(first!));
    // The full graph: input_ids and the route overrides, and an LM head.
    assert.throws(
      () => readRouterGraph(split(`${models}${first}.onnx`), olmoeMini),
      /not input_ids alone \(a full graph\)/,
    );
    // A baked-in forced route (forced_experts not all -1).
    const forced = router.weights.map((w) => {
      if (w.name !== "forced_experts") return w;
      const data = new BigInt64Array(w.data.length / 8).fill(-1n);
      data[0] = 3n;
      return { ...w, data: new Uint8Array(data.buffer) };
    });
    assert.throws(() => readRouterGraph({ ...router, weights: forced }, olmoeMini), /forces a route/);
    // A weight missing, and a model of another shape.
    const without = router.weights.filter((w) => !w.name.startsWith("model.blocks.1.moe_norm"));
    assert.throws(
      () => readRouterGraph({ ...router, weights: without }, olmoeMini),
      /no weight model\.blocks\.1\.moe_norm\.weight/,
    );
    const wider = { ...olmoeMini, architecture: { ...olmoeMini.architecture, n_experts: 32 } };
    assert.throws(() => readRouterGraph(router, wider), /is \[96, 64\], not \[96, 32\]/);
    // The graph itself reads.
    const graph = readRouterGraph(router, olmoeMini);
    assert.throws(
      () => routerForward(graph, Int32Array.of(1, graph.vocab), 1, 2),
      /token id 4096 is outside the vocabulary of 4096/,
    );
    assert.throws(() => routerForward(graph, Int32Array.of(1, -1), 1, 2), /token id -1 is outside/);
    assert.throws(() => routerForward(graph, Int32Array.of(1, 2, 3), 2, 2), /3 token ids for a batch of 2 × 2/);
  },
);

test("float16 bits decode to their IEEE values", () => {
  const cases: [number, number][] = [
    [0x3c00, 1],
    [0xc000, -2],
    [0x3555, 0.333251953125],
    [0x7bff, 65504], // the largest finite half
    [0x0400, 2 ** -14], // the smallest normal
    [0x0001, 2 ** -24], // the smallest subnormal
    [0x03ff, 1023 * 2 ** -24], // the largest subnormal
    [0x0000, 0],
    [0x7c00, Infinity],
    [0xfc00, -Infinity],
  ];
  const table = halfTable();
  assert.deepEqual(
    cases.map(([bits]) => table[bits]),
    cases.map(([, value]) => value),
  );
  assert.ok(Object.is(table[0x8000], -0), "negative zero keeps its sign");
  assert.ok(Number.isNaN(table[0x7e00]), "NaN");
});
