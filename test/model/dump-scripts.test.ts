// The dump script for a plain PyTorch router (docs/dump-router-logits/pytorch.py)
// end to end: a toy sigmoid router with an expert bias in torch, its logits and
// bias captured by the script, then `moe-lab losses --score sigmoid --bias`:
// the lab's loads are the experts torch chose.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { join } from "node:path";
import { python, root, missingRecipeTools } from "./smoke-corpus.js";
import { scratchDir } from "../helpers.js";

const missing = missingRecipeTools(["torch", "numpy"]);

const toyRouter = `
import json, sys, torch
sys.path.insert(0, "docs/dump-router-logits")
from pytorch import RouterCapture
out = sys.argv[1]
torch.manual_seed(3)
layers, tokens, dim, experts, k = 3, 50, 12, 16, 4
gates = [torch.nn.Linear(dim, experts, bias=False) for _ in range(layers)]
biases = [torch.randn(experts, dtype=torch.float32) * 0.05 for _ in range(layers)]
capture = RouterCapture(gates)
x = torch.randn(tokens, dim)
loads = []
with torch.no_grad():
    for gate, bias in zip(gates, biases):
        scores = torch.sigmoid(gate(x))
        chosen = torch.topk(scores + bias, k, dim=-1).indices  # DeepSeek-V3-style: bias for the choice only
        loads.append(torch.bincount(chosen.reshape(-1), minlength=experts).tolist())
capture.save_npy(out + "/router_logits.npy")
RouterCapture.save_bias_json(out + "/expert_bias.json", biases)
print(json.dumps(loads))
`;

test(
  "pytorch.py's logits and bias, routed by the lab, give the loads torch dispatched",
  { skip: missing || false },
  () => {
    const dir = scratchDir("moe-lab-dump-");
    const ran = spawnSync(python, ["-c", toyRouter, dir], { cwd: root, encoding: "utf8" });
    assert.equal(ran.status, 0, ran.stderr);
    const torchLoads = JSON.parse(ran.stdout);
    const record = JSON.parse(
      execFileSync(
        process.execPath,
        [
          join(root, "bin/moe-lab.js"),
          "losses",
          join(dir, "router_logits.npy"),
          "--top-k",
          "4",
          "--score",
          "sigmoid",
          "--bias",
          join(dir, "expert_bias.json"),
        ],
        { encoding: "utf8" },
      ),
    );
    assert.deepEqual(record.load, torchLoads);
    // and without the bias the route is not the same: the bias mattered
    const plain = JSON.parse(
      execFileSync(
        process.execPath,
        [join(root, "bin/moe-lab.js"), "losses", join(dir, "router_logits.npy"), "--top-k", "4", "--score", "sigmoid"],
        { encoding: "utf8" },
      ),
    );
    assert.notDeepEqual(plain.load, torchLoads);
  },
);
