// The page's model worker opens one session per graph and feeds each
// checkpoint's weights (src/lib/model/onnx-weights.ts): this checks, on the
// shipped checkpoints and in the page's runtime (onnxruntime-web's WASM, in
// Node, with the worker's session options), that every checkpoint of a kind
// splits into the same graph, and that the shared session fed its weights
// computes what the checkpoint's own session does, on the reference inputs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import * as ort from "onnxruntime-web";
import { splitWeights, weightFeeds } from "../../src/lib/model/onnx-weights.js";
import { forwardFeeds, overrideShapeOf } from "../../src/lib/model/route-overrides.js";
import { olmoeMini } from "../../src/lib/model/olmoe-mini.js";
import { maxAbsDifference, type Reference } from "./onnx-runners.js";

const models = fileURLToPath(new URL("../../data/models/", import.meta.url));
const shape = overrideShapeOf(olmoeMini);
ort.env.wasm.numThreads = 1;

for (const kind of [".router", ""]) {
  const label = kind ? "router-only graphs" : "full graphs";
  const paths = olmoeMini.checkpoints.map((c) => `${models}${c}${kind}.onnx`);
  const missing = paths.filter((p) => !existsSync(p));
  test(
    `${label}: one session fed each checkpoint's weights equals each checkpoint's own session`,
    { skip: missing.length ? `not exported yet: ${missing.join(", ")}` : false },
    async () => {
      const splits = paths.map((p) => splitWeights(new Uint8Array(readFileSync(p))));
      assert.equal(new Set(splits.map((s) => s.key)).size, 1, "every checkpoint splits into one graph");
      for (const split of splits.slice(1)) assert.deepEqual(split.graph, splits[0].graph);
      // the model worker's options: "all" for a file with its weights, "disabled" for the shared graph
      const shared = await ort.InferenceSession.create(splits[0].graph, {
        executionProviders: ["wasm"],
        graphOptimizationLevel: "disabled",
      });
      for (const [i, path] of paths.entries()) {
        const reference: Reference = JSON.parse(
          readFileSync(path.replace(/(\.router)?\.onnx$/, ".reference.json"), "utf8"),
        );
        const ids = reference.input_ids.slice(0, 2);
        const [batch, seq] = [ids.length, ids[0].length];
        const own = await ort.InferenceSession.create(readFileSync(path), {
          executionProviders: ["wasm"],
          graphOptimizationLevel: "all",
        });
        const a = await own.run(forwardFeeds(ort.Tensor, own.inputNames, shape, ids.flat(), batch, seq));
        const b = await shared.run({
          ...forwardFeeds(ort.Tensor, splits[i].inputNames, shape, ids.flat(), batch, seq),
          ...weightFeeds(ort.Tensor, splits[i].weights),
        });
        assert.deepEqual(Object.keys(b).sort(), Object.keys(a).sort());
        for (const name of Object.keys(a)) {
          assert.deepEqual(b[name].dims, a[name].dims, name);
          const difference = maxAbsDifference(a[name].data as Float32Array, b[name].data as Float32Array);
          // the same operations on the same values; only the order of float additions may differ
          assert.ok(difference <= 1e-5, `${path}: ${name} differs by ${difference}`);
        }
      }
    },
  );
}
