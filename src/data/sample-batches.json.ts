// Framework data loader: the sample batches the z-loss and granularity pages
// route through OLMoE-mini, routed here at build time by onnxruntime-node
// (tools/sample-batches.ts). The pages' cells start from these numbers (the
// built HTML already shows them, tools/build-copies.ts) and replace them with
// the live run's when it finishes (a browser test checks the two agree within
// the backends' tolerance).
import { routeForBuild } from "../../tools/sample-batches.js";

const { batches } = await routeForBuild(new URL("../../", import.meta.url));
process.stdout.write(JSON.stringify(batches));
