// The route overrides in the shipped graphs (export.py: forced_experts,
// router_input_noise, router_bf16): optional inputs whose defaults give the
// plain forward pass, and which reproduce PyTorch's module run with the same
// override (the module rebuilt from the graph's own weights, from_onnx.py).
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { hashedNoise } from "../../src/lib/model/route-overrides.js";
import {
  maxAbsDifference,
  nextTokenLogProbs,
  runModel,
  runtimes,
  type ModelOutputs,
  type Reference,
} from "./onnx-runners.js";
import { olmoeMini } from "../../src/lib/model/olmoe-mini.js";

const dataDir = fileURLToPath(new URL("../../data/", import.meta.url));

// Both sides run the same float32 weights; the graph's buffered experts and
// the module's grouped ones add in different orders (measured: ≤ 6e-6).
const PARITY_TOLERANCE = 2e-4;
// Rounding to bfloat16 is a step function: an input that differs by one
// float32 ulp between the two runtimes can round to the neighbouring bfloat16
// (2⁻⁸ apart, relative), which moves a router logit by ~1e-3 (measured ≤ 2.3e-3).
// So the bf16 case gets a wider bound and must land far closer to PyTorch's
// bf16 run than the plain pass does.
const BF16_TOLERANCE = 1e-2;

/** The router's top-k per layer and token, from the graph's own logits and bias (softmax + bias, as trained). */
function ownChoice(out: ModelOutputs, k: number): number[] {
  const [L, B, S, E] = out.routerDims;
  const chosen: number[] = [];
  for (let l = 0; l < L; l++)
    for (let n = 0; n < B * S; n++) {
      const row = out.router.subarray((l * B * S + n) * E, (l * B * S + n + 1) * E);
      const max = Math.max(...row);
      const exp = Array.from(row, (v) => Math.exp(v - max));
      const sum = exp.reduce((a, b) => a + b, 0);
      const score = exp.map((v, e) => v / sum + out.bias![l * E + e]);
      chosen.push(
        ...score
          .map((s, e) => [s, e])
          .sort((a, b) => b[0] - a[0])
          .slice(0, k)
          .map(([, e]) => e),
      );
    }
  return chosen;
}

for (const strategy of olmoeMini.checkpoints) {
  const path = `${dataDir}models/${strategy}.onnx`;
  const reference: Reference | null = existsSync(path)
    ? JSON.parse(readFileSync(path.replace(".onnx", ".reference.json"), "utf8"))
    : null;
  const skip = !reference ? `${path} not exported yet` : !reference.overrides ? "exported before overrides" : false;

  test(`${strategy}: forcing the router's own choice reproduces the plain forward pass (1e-6)`, { skip }, async () => {
    assert.ok(statSync(path).size <= 8_000_000, `${path} is over 8 MB`);
    const ids = reference!.input_ids;
    const { n_layers: L, top_k: k } = reference!.config;
    const [B, S] = [ids.length, ids[0].length];
    for (const runtime of runtimes) {
      const plain = await runModel(runtime, path, ids);
      const dims = [L, B, S, k];
      for (const [what, data] of [
        ["every slot −1", new Array(L * B * S * k).fill(-1)],
        ["the router's experts written out", ownChoice(plain, k)],
      ] as const) {
        const forced = await runModel(runtime, path, ids, { forcedExperts: { data: Int32Array.from(data), dims } });
        const logits = maxAbsDifference(forced.logits, plain.logits);
        console.log(`${strategy} ${runtime}, ${what}: max |Δ logits| = ${logits.toExponential(2)}`);
        assert.ok(logits <= 1e-6, `${runtime}, ${what}: max |Δ logits| ${logits}`);
        assert.ok(maxAbsDifference(forced.router, plain.router) <= 1e-6, `${runtime}, ${what}: router logits moved`);
      }
      // zero noise and the bf16 flag off are the defaults, too
      const d = (reference!.config as unknown as { d_model: number }).d_model;
      const quiet = await runModel(runtime, path, ids, {
        routerInputNoise: { data: new Float32Array(L * B * S * d), dims: [L, B, S, d] },
        routerBf16: false,
      });
      assert.ok(maxAbsDifference(quiet.logits, plain.logits) <= 1e-6, `${runtime}: zero noise moved the logits`);
    }
  });

  test(
    `${strategy}: a forced route, bf16 router inputs and a perturbation equal PyTorch's with the same override`,
    { skip },
    async () => {
      const ids = reference!.input_ids;
      const { n_layers: L } = reference!.config;
      const [B, S] = [ids.length, ids[0].length];
      const plain = await runModel("onnxruntime-node", path, ids);
      const plainLogProbs = nextTokenLogProbs(plain.logits, plain.logitsDims, ids);
      for (const [name, expected] of Object.entries(reference!.overrides!.cases)) {
        const forced = expected.forced_experts;
        const noise = expected.router_input_noise;
        const overrides = {
          forcedExperts: forced
            ? { data: Int32Array.from(forced.flat(3)), dims: [L, B, S, forced[0][0][0].length] }
            : undefined,
          routerInputNoise: noise
            ? {
                data: hashedNoise(
                  noise.shape.reduce((a, b) => a * b, 1),
                  noise.scale,
                ),
                dims: noise.shape,
              }
            : undefined,
          routerBf16: name === "bf16" ? true : undefined,
        };
        for (const runtime of runtimes) {
          const out = await runModel(runtime, path, ids, overrides);
          const logProbs = nextTokenLogProbs(out.logits, out.logitsDims, ids);
          const logProbDifference = maxAbsDifference(logProbs, expected.next_token_log_probs.flat());
          const lastLayer = out.router.subarray((L - 1) * B * S * out.routerDims[3]);
          const routerDifference = maxAbsDifference(lastLayer, expected.last_router_logits.flat(2));
          console.log(
            `${strategy} ${name} ${runtime}: max |Δ log p| vs PyTorch ${logProbDifference.toExponential(2)}, last router ${routerDifference.toExponential(2)}`,
          );
          const tolerance = name === "bf16" ? BF16_TOLERANCE : PARITY_TOLERANCE;
          assert.ok(logProbDifference < tolerance, `${name} ${runtime}: log-probs ${logProbDifference}`);
          assert.ok(routerDifference < tolerance, `${name} ${runtime}: router logits ${routerDifference}`);
          if (name === "bf16" || name === "noise") {
            const plainLast = plain.router.subarray((L - 1) * B * S * plain.routerDims[3]);
            const plainDifference = maxAbsDifference(plainLast, expected.last_router_logits.flat(2));
            assert.ok(
              routerDifference < 0.25 * plainDifference,
              `${name} ${runtime}: ${routerDifference} from PyTorch's ${name} run, the plain pass ${plainDifference}`,
            );
          }
        }
        // and the override did something: a changed expert changes the logits
        if (name === "swap" || name === "random") {
          const out = await runModel("onnxruntime-node", path, ids, overrides);
          const moved = maxAbsDifference(nextTokenLogProbs(out.logits, out.logitsDims, ids), plainLogProbs);
          assert.ok(moved > 1e-3, `${name}: forcing an expert moved log p by only ${moved}`);
        }
      }
    },
  );
}
