// The bench's runtime floor (bench/runtime-floor.ts) records what a page asks
// its model worker for and replays it with the built worker alone in an empty
// page: if the worker's protocol or the pages' requests change, the bench row
// must fail here, not quietly time something else.
import { test } from "node:test";
import assert from "node:assert/strict";
import { launch, testTimeout } from "../../tools/chromium.js";
import { noCheckpoint, useBuiltSite } from "./fixture.js";
import {
  firstRuns,
  recordModelWork,
  recordedWork,
  runtimeFloorVisit,
  type ModelWork,
} from "../../bench/runtime-floor.js";
import { olmoeMini } from "../../src/lib/model/olmoe-mini.js";

const built = useBuiltSite();
const skip = noCheckpoint;

/** The playground's requests up to its first routed text, recorded in a fresh browser. */
async function playgroundWork(): Promise<ModelWork> {
  const context = await launch();
  try {
    await recordModelWork(context);
    const page = await context.newPage();
    await page.goto(`${built.site.url}playground?ep=wasm`);
    await page.waitForSelector("[data-testid=tokens]");
    return firstRuns(await recordedWork(page), 1);
  } finally {
    await context.close();
  }
}

test(
  "the runtime floor replays the playground's first route with its worker alone, and answers the same shapes",
  { skip, timeout: testTimeout },
  async () => {
    const work = await playgroundWork();
    assert.ok(work.workerUrl.startsWith(built.site.url), work.workerUrl);
    assert.equal(work.loads.length, 1, "one checkpoint opened for the first route");
    assert.equal(work.runs.length, 1);
    const [run] = work.runs;
    assert.equal(run.inputIds.length, run.batch * run.seq, "the token ids recorded whole");
    assert.ok(run.seq > 0 && run.seq <= olmoeMini.context, `${run.seq} tokens`);
    // A second, smaller pass of the same checkpoint: the answers come back in the order asked.
    const twice: ModelWork = {
      ...work,
      runs: [...work.runs, { ...run, batch: 2, seq: 16, inputIds: Array.from({ length: 32 }, (_, i) => i + 1) }],
    };
    const visit = await runtimeFloorVisit(built.site, twice);
    assert.ok(Number.isFinite(visit.ms) && visit.ms > 0, `${visit.ms} ms`);
    assert.deepEqual(visit.dims, [
      [olmoeMini.layers, run.batch, run.seq, olmoeMini.experts],
      [olmoeMini.layers, 2, 16, olmoeMini.experts],
    ]);
    assert.deepEqual(visit.backends, ["wasm", "wasm"]);
  },
);

test(
  "the runtime floor reports a worker's error instead of waiting forever",
  { skip, timeout: testTimeout },
  async () => {
    const work = await playgroundWork();
    const missing = work.loads[0].modelUrl.replace(/[^/]+$/, "no-such-checkpoint.onnx");
    const broken: ModelWork = {
      ...work,
      loads: [{ ...work.loads[0], modelUrl: missing }],
      runs: [{ ...work.runs[0], modelUrl: missing }],
    };
    await assert.rejects(runtimeFloorVisit(built.site, broken), /load: .*HTTP 404/);
  },
);
