// The bench's reading of onnxruntime's profiler trace: per operator type, the
// mean time per run over the last runs only (earlier runs are warm-up).
import { test } from "node:test";
import assert from "node:assert/strict";
import { operatorTimes } from "../bench/operator-profile.js";

const run = (ts: number) => ({ cat: "Session", name: "model_run", ts, dur: 900 });
const kernel = (op: string, ts: number, dur: number) => ({
  cat: "Node",
  name: `/blocks.0/${op}_kernel_time`,
  ts,
  dur,
  args: { op_name: op },
});

test("operator times average the last runs and skip warm-up, sessions and non-kernel events", () => {
  const events = [
    run(0),
    kernel("MatMul", 10, 5000), // warm-up: ignored
    run(1000),
    kernel("MatMul", 1010, 300),
    kernel("MatMul", 1020, 100),
    kernel("Softmax", 1030, 40),
    { cat: "Node", name: "/blocks.0/MatMul_fence_before", ts: 1040, dur: 7, args: { op_name: "MatMul" } },
    run(2000),
    kernel("MatMul", 2010, 200),
    kernel("Softmax", 2030, 60),
  ];
  const times = operatorTimes(events, 2);
  assert.deepEqual([...times.keys()].sort(), ["MatMul", "Softmax"]);
  assert.ok(Math.abs(times.get("MatMul")! - 0.3) < 1e-12, `MatMul ${times.get("MatMul")} ms per run`); // (300 + 100 + 200) µs / 2 runs
  assert.ok(Math.abs(times.get("Softmax")! - 0.05) < 1e-12);
});

test("a trace with fewer runs than asked for is an error, not a smaller average", () => {
  assert.throws(() => operatorTimes([run(0), kernel("MatMul", 10, 5)], 3), /holds 1 runs, fewer than 3/);
});
