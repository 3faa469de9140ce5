"""One training arm of OLMoE-mini: what balances it, which z-loss, which seed.

An arm is a small dict (JSON in the campaign, `arm.json` in its run folder):

  arm        name; the four shipped arms keep theirs: micro, global, loss-free, none
  seed       1, 2, 3, ...: seed 1 is the shipped runs' seed (torch and data order 1234),
             seed s uses 1234 + s - 1 for both, so within a seed every arm shares its
             initialisation and its data order (paired seeds)
  alpha      LBL coefficient (0: no LBL)
  group      sequences per `f` group ("Balance BSZ", Qiu et al. 2025): f counted over
             `group` sequences, P per sequence; 1 is lbl.sequence (micro), 32 the whole
             batch (lbl.global with micro-batches of one sequence)
  beta       router z-loss coefficient (0: none)
  z_norm     "olmoe": mean lse² ÷ k (the OLMoE fork of MegaBlocks), "st_moe": mean lse²
  bias_rule  null, "sign" (Wang et al. 2024), "sign-recentred" (torchtitan: the update's
             mean subtracted, so the biases keep mean 0), "proportional" (u times the
             relative deviation (mean - c) / mean: a P-controller whose step at a 100 %
             overload equals the sign rule's, Wang et al. 2024 §4 discusses it for softmax)
  bias_rate  u

The run id (folder, metrics and log file names) is the arm's name for seed 1 and
`<arm>.seed<s>` otherwise, so the shipped files keep their names.
"""
import json

import facts

SEED_BASE = 1234
BATCH_SEQUENCES = facts.BATCH_SEQUENCES
STRATEGIES = facts.CHECKPOINTS  # src/lib/model/olmoe-mini.json
BIAS_RULES = ("sign", "sign-recentred", "proportional")
Z_NORMS = ("olmoe", "st_moe")
FIELDS = ("arm", "seed", "alpha", "group", "beta", "z_norm", "bias_rule", "bias_rate")


class ArmError(ValueError):
    """A config that cannot be trained; the message names the arm."""


def shipped(strategy, seed=1, **changes):
    """The config of one of the four shipped strategies (all with z-loss 0.001 ÷ k)."""
    if strategy not in STRATEGIES:
        raise ArmError(f"unknown strategy {strategy!r} (known: {', '.join(STRATEGIES)})")
    arm = {"arm": strategy, "seed": seed, "alpha": 0.0, "group": 1, "beta": 0.001, "z_norm": "olmoe", "bias_rule": None, "bias_rate": 0.0}
    if strategy == "micro":
        arm.update(alpha=0.01, group=1)
    elif strategy == "global":
        arm.update(alpha=0.01, group=BATCH_SEQUENCES)
    elif strategy == "loss-free":
        arm.update(bias_rule="sign", bias_rate=0.001)
    arm.update(changes)
    return validate(arm)


def run_id(arm):
    return arm["arm"] if arm["seed"] == 1 else f"{arm['arm']}.seed{arm['seed']}"


def torch_seed(arm):
    return SEED_BASE + arm["seed"] - 1


def strategy_of(arm):
    """The shipped strategy an arm varies (what the ablation page groups it under)."""
    if arm["bias_rule"]:
        return "loss-free"
    if arm["alpha"] > 0:
        return "micro" if arm["group"] == 1 else "global"
    return "none"


def validate(arm):
    name = arm.get("arm") if isinstance(arm, dict) else None
    where = f"arm {name!r}" if isinstance(name, str) else "an arm without a name"

    def fail(why):
        raise ArmError(f"{where}: {why}")

    if not isinstance(arm, dict):
        fail("is not an object")
    unknown = set(arm) - set(FIELDS)
    if unknown:
        fail(f"unknown field(s) {', '.join(sorted(unknown))}")
    missing = [f for f in FIELDS if f not in arm]
    if missing:
        fail(f"missing field(s) {', '.join(missing)}")
    if not isinstance(name, str) or not name or not all(c.isalnum() or c in "-_" for c in name):
        fail("the name must be letters, digits, '-' or '_'")
    seed = arm["seed"]
    if not isinstance(seed, int) or isinstance(seed, bool) or not 1 <= seed <= 1000:
        fail(f"seed must be an integer from 1 to 1000, not {seed!r}")
    for field in ("alpha", "beta", "bias_rate"):
        value = arm[field]
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value < 10:
            fail(f"{field} must be a number in [0, 10), not {value!r}")
    group = arm["group"]
    if not isinstance(group, int) or isinstance(group, bool) or group < 1 or BATCH_SEQUENCES % group:
        fail(f"group must divide the batch of {BATCH_SEQUENCES} sequences, not {group!r}")
    if arm["z_norm"] not in Z_NORMS:
        fail(f"unknown z-loss normalisation {arm['z_norm']!r} (known: {', '.join(Z_NORMS)})")
    if arm["bias_rule"] is not None and arm["bias_rule"] not in BIAS_RULES:
        fail(f"unknown bias rule {arm['bias_rule']!r} (known: {', '.join(BIAS_RULES)})")
    if arm["bias_rule"] is None and arm["bias_rate"]:
        fail("a bias rate without a bias rule")
    if arm["bias_rule"] is not None and not arm["bias_rate"]:
        fail("a bias rule needs a bias rate above 0")
    return dict(arm)


def load(path):
    with open(path) as f:
        return validate(json.load(f))


def same(a, b):
    return all(a[f] == b[f] for f in FIELDS)
