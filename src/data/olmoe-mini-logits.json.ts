// Framework data loader: OLMoE-mini's router logits on its four fixed sample
// sequences, for each shipped checkpoint, in the CLI's JSON input format
// ({router_logits [L][T][E], top_k, sequence_lengths}), so that the "Your
// framework" page and `moe-lab losses FILE --framework NAME` read the same
// numbers. They were computed by PyTorch from the trained checkpoint when it
// was exported (data/models/<checkpoint>.reference.json, data/recipe/export.py).
import { existsSync, readFileSync } from "node:fs";
import { olmoeMini } from "../lib/model/olmoe-mini.js";

const checkpoints = olmoeMini.checkpoints;
const out: Record<string, unknown> = {};
for (const name of checkpoints) {
  const path = new URL(`../../data/models/${name}.reference.json`, import.meta.url);
  if (!existsSync(path)) continue;
  const reference = JSON.parse(readFileSync(path, "utf8"));
  out[name] = {
    router_logits: reference.router_logits,
    top_k: reference.config.top_k,
    sequence_lengths: reference.input_ids.map((ids: number[]) => ids.length),
    // The loss-free checkpoint routes with its expert bias; a framework's
    // aux loss is computed on the plain top-k, as the CLI does.
    strategy: reference.strategy,
  };
}
process.stdout.write(JSON.stringify(out));
