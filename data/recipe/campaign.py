"""The training campaign: every arm of the ablation, in priority order, resumable.

Runs each arm that has no published metrics yet: trains it (train.py resumes an
interrupted run from its last saved step), evaluates it on the held-out split
(evaluate.py) and publishes its log and metrics into data/logs/<run>.jsonl and
data/metrics/<run>.json — the log first, the metrics last and atomically, so a
metrics file means the arm is complete. Finished arms are skipped; an arm whose
run folder, state or metrics belong to another config is reported by name and
left alone, never restarted or mixed.

Arms, in priority order (issue 18); seed 1 of the four shipped strategies is the
shipped run:
  a  micro, global, loss-free, none at seeds 2 and 3
  b  the z-loss question on top of global LBL: beta 0.001 without ÷k, and no
     z-loss, at seeds 1-3 (with ÷k is the global arm itself)
  c  alpha 0.001, 0.003, 0.03, 0.1 for the per-sequence and the global LBL, seed 1
  d  loss-free: u 1e-4 and 1e-2 (sign), proportional at 1e-3, recentred sign at 1e-3
  e  sequences per f group 2, 4, 8 (alpha 0.01), seed 1

Speed: --jobs single-threaded runs side by side with OpenBLAS on one thread and
malloc keeping its buffers (../shared/design.md, "Training budget": 3.2× the
two-threaded single run on the 2-core machine). On a CUDA device one job at a time.

usage: python3 data/recipe/campaign.py [--jobs 2] [--only PREFIX] [--plan] [--arms arms.json]
"""
import argparse
import fcntl
import json
import math
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import arms  # noqa: E402
import facts  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SINGLE_THREAD_ENV = {
    "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
    "MALLOC_MMAP_THRESHOLD_": "2147483647", "MALLOC_TRIM_THRESHOLD_": "2147483647", "MALLOC_TOP_PAD_": "1073741824",
}
# Measured on the 2-core machine (design.md): ~2,700 tokens/s per single-threaded
# job with two side by side; used until a finished campaign arm gives its own rate.
DEFAULT_SECONDS_PER_TOKEN = 1 / 2700


def priority_arms():
    """The campaign's arms, highest priority first."""
    plan = []
    for seed in (2, 3):  # a
        plan += [arms.shipped(s, seed=seed) for s in arms.STRATEGIES]
    for seed in (1, 2, 3):  # b
        plan.append(arms.shipped("global", seed=seed, arm="global-z-no-divk", z_norm="st_moe"))
        plan.append(arms.shipped("global", seed=seed, arm="global-no-z", beta=0.0))
    for strategy in ("micro", "global"):  # c
        for alpha, label in ((0.001, "1e-3"), (0.003, "3e-3"), (0.03, "3e-2"), (0.1, "1e-1")):
            plan.append(arms.shipped(strategy, arm=f"{strategy}-alpha{label}", alpha=alpha))
    plan.append(arms.shipped("loss-free", arm="loss-free-u1e-4", bias_rate=1e-4))  # d
    plan.append(arms.shipped("loss-free", arm="loss-free-u1e-2", bias_rate=1e-2))
    plan.append(arms.shipped("loss-free", arm="loss-free-proportional", bias_rule="proportional"))
    plan.append(arms.shipped("loss-free", arm="loss-free-recentred", bias_rule="sign-recentred"))
    for group in (2, 4, 8):  # e
        plan.append(arms.shipped("global", arm=f"lbl-group{group}", group=group))
    return plan


def check_plan(plan):
    """Every arm valid, no two with one run id, no shipped name reused for another config."""
    seen = {}
    for arm in plan:
        arm = arms.validate(arm)
        name = arms.run_id(arm)
        if name in seen:
            raise arms.ArmError(f"arm {arm['arm']!r} seed {arm['seed']}: run id {name!r} is taken twice")
        if arm["arm"] in arms.STRATEGIES and not arms.same(arm, arms.shipped(arm["arm"], seed=arm["seed"])):
            raise arms.ArmError(f"arm {arm['arm']!r} seed {arm['seed']}: the shipped name {arm['arm']!r} with another config")
        seen[name] = arm
    return list(seen.values())


def published_arm(metrics_path, name):
    """The arm a published metrics file records (the four shipped files predate `arm_config`)."""
    with open(metrics_path) as f:
        metrics = json.load(f)
    if "arm_config" in metrics:
        return arms.validate(metrics["arm_config"])
    if name in arms.STRATEGIES and metrics.get("strategy") == name:
        return arms.shipped(name)
    raise arms.ArmError(f"{metrics_path} names no arm")


class Campaign:
    def __init__(self, args):
        self.args = args
        self.runs, self.metrics, self.logs = args.runs, args.metrics, args.logs
        self.steps = math.ceil(args.tokens / (arms.BATCH_SEQUENCES * facts.CONTEXT))

    def status(self, arm):
        """('done' | 'evaluate' | 'train' | 'conflict', why, steps already trained)."""
        name = arms.run_id(arm)
        metrics_path = os.path.join(self.metrics, f"{name}.json")
        if os.path.exists(metrics_path):
            try:
                recorded = published_arm(metrics_path, name)
            except (OSError, ValueError, arms.ArmError) as error:
                return "conflict", f"{metrics_path} is unreadable ({error})", 0
            if not arms.same(recorded, arm):
                return "conflict", f"{metrics_path} holds another config ({json.dumps(recorded)})", 0
            if not os.path.exists(os.path.join(self.logs, f"{name}.jsonl")):
                return "conflict", f"{metrics_path} exists but its log does not", 0
            return "done", "published", self.steps
        run_dir = os.path.join(self.runs, name)
        arm_path = os.path.join(run_dir, "arm.json")
        if os.path.exists(arm_path):
            try:
                recorded = arms.load(arm_path)
            except (OSError, ValueError, arms.ArmError) as error:
                return "conflict", f"{arm_path} is unreadable ({error})", 0
            if not arms.same(recorded, arm):
                return "conflict", f"{run_dir} holds another config ({json.dumps(recorded)})", 0
        progress = os.path.join(run_dir, "log.jsonl")
        done = 0
        if os.path.exists(progress):
            with open(progress) as f:
                for line in f:
                    try:
                        done = max(done, json.loads(line)["step"] + 1)
                    except (ValueError, KeyError, TypeError):
                        pass
        return ("evaluate" if done >= self.steps and os.path.exists(os.path.join(run_dir, "state.pt")) else "train"), "", min(done, self.steps)

    def seconds_per_token(self):
        """From this campaign's finished CPU arms when there are any (device and jobs as now)."""
        rates = []
        for name in os.listdir(self.metrics) if os.path.isdir(self.metrics) else []:
            try:
                with open(os.path.join(self.metrics, name)) as f:
                    m = json.load(f)
                if m.get("campaign", {}).get("jobs") == self.args.jobs and m.get("device") == self.device():
                    rates.append(m["training_seconds"] / m["training_tokens"])
            except (OSError, ValueError, KeyError, ZeroDivisionError):
                pass
        return (sum(rates) / len(rates), f"measured on {len(rates)} finished arm(s)") if rates else (DEFAULT_SECONDS_PER_TOKEN, "assumed 2,700 tokens/s a job")

    def device(self):
        return self.args.device or ("cuda" if cuda_available() else "cpu")

    def run(self, plan):
        todo, conflicts = [], []
        for arm in plan:
            state, why, done = self.status(arm)
            if state == "conflict":
                conflicts.append(f"{arms.run_id(arm)}: {why}")
            elif state != "done":
                todo.append((arm, state, done))
        per_token, basis = self.seconds_per_token()
        tokens_left = sum((self.steps - done) * arms.BATCH_SEQUENCES * facts.CONTEXT for _, _, done in todo)
        cpu_hours = tokens_left * per_token / 3600
        print(f"campaign: {len(plan)} arms, {len(plan) - len(todo) - len(conflicts)} published, {len(todo)} to run, {len(conflicts)} in conflict", file=sys.stderr)
        print(f"campaign: about {cpu_hours:.1f} CPU-hours of training left ({basis}), {cpu_hours / self.args.jobs:.1f} hours with {self.args.jobs} jobs, plus ~1 min of evaluation per arm", file=sys.stderr)
        for line in conflicts:
            print(f"campaign: skipping {line}", file=sys.stderr)
        for arm, state, done in todo:
            print(f"campaign:   {arms.run_id(arm)}: {'evaluate' if state == 'evaluate' else f'train from step {done}/{self.steps}'}", file=sys.stderr)
        if self.args.plan:
            return 0 if not conflicts else 1
        failures = self.execute(todo)
        for line in failures:
            print(f"campaign: FAILED {line}", file=sys.stderr)
        return 1 if failures or conflicts else 0

    def execute(self, todo):
        env = dict(os.environ, **SINGLE_THREAD_ENV, MOE_LAB_RUNS=self.runs)
        queue = list(todo)
        running, failures = {}, []
        while queue or running:
            while queue and len(running) < self.args.jobs:
                arm, _, _ = queue.pop(0)
                running[arms.run_id(arm)] = (arm, self.start(arm, env), time.time())
            time.sleep(1 if self.args.tokens > 100_000 else 0.1)
            for name, (arm, process, began) in list(running.items()):
                if process.poll() is None:
                    continue
                del running[name]
                if process.returncode != 0:
                    failures.append(f"{name}: training exited with {process.returncode}: {tail(self.err_path(name))}")
                    continue
                try:
                    self.publish(arm, env)
                    print(f"campaign: {name} published after {(time.time() - began) / 60:.1f} min", file=sys.stderr)
                except (subprocess.CalledProcessError, OSError, ValueError) as error:
                    failures.append(f"{name}: publishing failed: {error}: {tail(self.err_path(name))}")
        return failures

    def err_path(self, name):
        return os.path.join(self.runs, name + ".err")

    def start(self, arm, env):
        name = arms.run_id(arm)
        os.makedirs(self.runs, exist_ok=True)
        config_path = os.path.join(self.runs, f"{name}.arm.json")
        with open(config_path, "w") as f:
            json.dump(arm, f)
        command = [sys.executable, os.path.join(HERE, "train.py"), "--arm-config", config_path, "--tokens", str(self.args.tokens),
                   "--corpus", self.args.corpus, "--runs", self.runs, "--threads", "1"]
        if self.args.small:
            command.append("--small")
        if self.args.device:
            command += ["--device", self.args.device]
        return subprocess.Popen(command, stdout=open(os.path.join(self.runs, name + ".out"), "a"), stderr=open(self.err_path(name), "a"), env=env)

    def publish(self, arm, env):
        name = arms.run_id(arm)
        run_dir = os.path.join(self.runs, name)
        os.makedirs(self.logs, exist_ok=True)
        os.makedirs(self.metrics, exist_ok=True)
        # one line per step, the last write of each step kept (a resumed run may have logged a step twice)
        steps = {}
        with open(os.path.join(run_dir, "log.jsonl")) as f:
            for line in f:
                if line.strip():
                    record = json.loads(line)
                    steps[record["step"]] = record
        if sorted(steps) != list(range(self.steps)):
            raise ValueError(f"the log of {name} holds steps {min(steps, default=None)}..{max(steps, default=None)} ({len(steps)}), not 0..{self.steps - 1}")
        log_path = os.path.join(self.logs, f"{name}.jsonl")
        with open(log_path + ".tmp", "w") as out:
            for step in sorted(steps):
                out.write(json.dumps(steps[step]) + "\n")
        os.replace(log_path + ".tmp", log_path)
        staging = os.path.join(self.runs, ".metrics")
        subprocess.run([sys.executable, os.path.join(HERE, "evaluate.py"), "--runs", self.runs, "--corpus", self.args.corpus, "--out", staging, "--threads", "1", name],
                       check=True, env=env, stdout=subprocess.DEVNULL, stderr=open(self.err_path(name), "a"))
        with open(os.path.join(staging, f"{name}.json")) as f:
            metrics = json.load(f)
        metrics["campaign"] = {"jobs": self.args.jobs, "threads_per_job": 1}
        target = os.path.join(self.metrics, f"{name}.json")
        with open(target + ".tmp", "w") as f:
            json.dump(metrics, f)
        os.replace(target + ".tmp", target)


def cuda_available():
    try:
        import torch
        return torch.cuda.is_available()
    except ImportError:
        return False


def tail(path):
    try:
        with open(path) as f:
            lines = [line.strip() for line in f if line.strip()]
        return lines[-1] if lines else "(no output)"
    except OSError:
        return "(no output)"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=None, help="arms trained side by side (default: one per core; one on CUDA)")
    parser.add_argument("--only", default=None, help="run only arms whose run id starts with this")
    parser.add_argument("--plan", action="store_true", help="print what would run and the estimate, run nothing")
    parser.add_argument("--arms", default=None, help="a JSON list of arms instead of the built-in plan")
    parser.add_argument("--tokens", type=int, default=5_000_000)
    parser.add_argument("--corpus", default="data/corpus")
    parser.add_argument("--runs", default=os.environ.get("MOE_LAB_RUNS", "data/runs"))
    parser.add_argument("--metrics", default="data/metrics")
    parser.add_argument("--logs", default="data/logs")
    parser.add_argument("--device", default=None)
    parser.add_argument("--small", action="store_true", help="tiny model (the runner's own test)")
    args = parser.parse_args()
    try:
        if args.arms:
            with open(args.arms) as f:
                plan = json.load(f)
            if not isinstance(plan, list):
                raise arms.ArmError(f"{args.arms} must hold a list of arms")
        else:
            plan = priority_arms()
        plan = check_plan(plan)
    except (OSError, ValueError, arms.ArmError) as error:
        sys.exit(f"campaign: {error}")
    if args.only:
        plan = [arm for arm in plan if arms.run_id(arm).startswith(args.only)]
    if args.jobs is None:
        args.jobs = 1 if (args.device or ("cuda" if cuda_available() else "cpu")) == "cuda" else max(1, os.cpu_count() or 1)
    os.makedirs(args.runs, exist_ok=True)
    if not args.plan:  # planning only reads, so it may run beside a campaign
        lock = open(os.path.join(args.runs, ".campaign.lock"), "w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            sys.exit(f"campaign: another campaign is running on {args.runs}")
    sys.exit(Campaign(args).run(plan))


if __name__ == "__main__":
    main()
