/**
 * Route overrides: the three extra inputs of OLMoE-mini's full graph
 * (data/recipe/export.py) and what the lab reads back from its logits.
 *
 *   forced_experts      [L, B|1, S|1, k] int64: an expert per slot, −1 for
 *                       the router's own choice. The gate of a forced slot is
 *                       the router's probability of the expert now used
 *                       (OLMoE's gates: softmax over all experts, not
 *                       renormalised), so only the route changes.
 *   router_input_noise  [L, B|1, S|1, d] float32, added to each router's input.
 *   router_bf16         scalar float32; nonzero rounds each router's input
 *                       to bfloat16 (8 significant bits, half to even).
 *
 * They are required inputs (onnxruntime's JavaScript bindings neither list nor
 * accept an initializer that doubles as an input), so every caller of the full
 * graph sends them; `NO_OVERRIDE` values are [L, 1, 1, *]-shaped and
 * broadcast, a few hundred bytes. The router-only graphs bake those values in
 * and take `input_ids` alone (router_only.py).
 */

export const OVERRIDE_INPUTS = ["forced_experts", "router_input_noise", "router_bf16"] as const;

/** A dense tensor: values row-major over `dims`. */
export interface Dense<T> {
  data: T;
  dims: readonly number[];
}

export interface RouteOverrides {
  /** [L, B, S, k] (or broadcastable [L, 1, 1, k]); −1 = the router's own choice. */
  forcedExperts?: Dense<Int32Array>;
  /** [L, B, S, d] (or [L, 1, 1, d]), added to each router's input. */
  routerInputNoise?: Dense<Float32Array>;
  /** Round each router's input to bfloat16. */
  routerBf16?: boolean;
}

/** What the graph's override inputs need to know about the model. */
export interface OverrideShape {
  layers: number;
  topK: number;
  experts: number;
  /** The router's input width (d_model). */
  width: number;
}

/** The override shape of a model described by olmoe-mini.json's facts. */
export function overrideShapeOf(model: {
  layers: number;
  topK: number;
  experts: number;
  architecture: { d_model: number };
}): OverrideShape {
  return { layers: model.layers, topK: model.topK, experts: model.experts, width: model.architecture.d_model };
}

/** The smallest shape of the ONNX runtime's Tensor constructor both onnxruntime-web and -node satisfy. */
export type TensorConstructor<T> = new (
  type: "int64" | "float32",
  data: BigInt64Array | Float32Array,
  dims: readonly number[],
) => T;

/**
 * Checks an override against the batch it will run on; returns the problem in
 * words, or null. `batch`, `seq`: the input's shape.
 */
export function overrideProblem(
  overrides: RouteOverrides,
  shape: OverrideShape,
  batch: number,
  seq: number,
): string | null {
  const broadcast = (dims: readonly number[], last: number, name: string): string | null => {
    const okBatch = dims[1] === batch || dims[1] === 1;
    const okSeq = dims[2] === seq || dims[2] === 1;
    if (dims.length !== 4 || dims[0] !== shape.layers || dims[3] !== last || !okBatch || !okSeq)
      return `${name} has shape [${dims.join(", ")}]; this input needs [${shape.layers}, ${batch} or 1, ${seq} or 1, ${last}]`;
    return null;
  };
  const forced = overrides.forcedExperts;
  if (forced) {
    const problem = broadcast(forced.dims, shape.topK, "the forced route");
    if (problem) return problem;
    if (forced.data.length !== forced.dims.reduce((a, b) => a * b, 1))
      return `the forced route holds ${forced.data.length} values for shape [${forced.dims.join(", ")}]`;
    const k = shape.topK;
    for (let slot = 0; slot < forced.data.length; slot += k) {
      const seen = new Set<number>();
      for (let j = 0; j < k; j++) {
        const e = forced.data[slot + j];
        if (e === -1) continue;
        if (!Number.isInteger(e) || e < 0 || e >= shape.experts)
          return `expert ${e} is out of range: OLMoE-mini has experts 0–${shape.experts - 1} (−1 keeps the router's choice)`;
        if (seen.has(e))
          return `expert ${e} is forced twice for one token; each of its ${k} slots needs a different expert`;
        seen.add(e);
      }
    }
  }
  const noise = overrides.routerInputNoise;
  if (noise) {
    const problem = broadcast(noise.dims, shape.width, "the router-input perturbation");
    if (problem) return problem;
    if (noise.data.length !== noise.dims.reduce((a, b) => a * b, 1))
      return `the perturbation holds ${noise.data.length} values for shape [${noise.dims.join(", ")}]`;
    if (!noise.data.every(Number.isFinite)) return "the perturbation has a value that is not a finite number";
  }
  return null;
}

/**
 * The override feeds for a session whose inputs are `inputNames`: the given
 * overrides, the no-override values for the rest; nothing for a graph without
 * those inputs (a router-only graph, a reader's own model), which refuses a
 * real override instead of silently ignoring it.
 */
export function overrideFeeds<T>(
  Tensor: TensorConstructor<T>,
  inputNames: readonly string[],
  shape: OverrideShape,
  overrides: RouteOverrides = {},
): Record<string, T> {
  const takes = OVERRIDE_INPUTS.filter((name) => inputNames.includes(name));
  if (takes.length < OVERRIDE_INPUTS.length) {
    refuseOverrides(overrides);
    return {};
  }
  const { layers: L, topK: k, width: d } = shape;
  const forced = overrides.forcedExperts ?? { data: new Int32Array(L * k).fill(-1), dims: [L, 1, 1, k] };
  const noise = overrides.routerInputNoise ?? { data: new Float32Array(L * d), dims: [L, 1, 1, d] };
  return {
    forced_experts: new Tensor(
      "int64",
      BigInt64Array.from(forced.data, (v) => BigInt(v)),
      forced.dims,
    ),
    router_input_noise: new Tensor("float32", noise.data, noise.dims),
    router_bf16: new Tensor("float32", Float32Array.of(overrides.routerBf16 ? 1 : 0), []),
  };
}

/** For a graph that takes no route override (a router-only graph): a real override is refused, never silently ignored. */
export function refuseOverrides(overrides: RouteOverrides = {}): void {
  if (overrides.forcedExperts || overrides.routerInputNoise || overrides.routerBf16)
    throw new Error(
      "this model file takes no route override (it has no forced_experts input): load the checkpoint's full graph",
    );
}

/**
 * Every feed of a forward pass: `input_ids` [batch, seq] (int64) and, for a
 * graph that takes them, the route overrides (checked against the batch
 * first: a bad override is refused with its sentence, never run).
 */
export function forwardFeeds<T>(
  Tensor: TensorConstructor<T>,
  inputNames: readonly string[],
  shape: OverrideShape,
  ids: ArrayLike<number>,
  batch: number,
  seq: number,
  overrides: RouteOverrides = {},
): Record<string, T> {
  const problem = overrideProblem(overrides, shape, batch, seq);
  if (problem) throw new Error(problem);
  return {
    input_ids: new Tensor(
      "int64",
      BigInt64Array.from(ids, (v) => BigInt(v)),
      [batch, seq],
    ),
    ...overrideFeeds(Tensor, inputNames, shape, overrides),
  };
}

/** A route with every slot the router's own (−1), to be filled in: [L, B, S, k]. */
export function ownRoute(layers: number, batch: number, seq: number, topK: number): Dense<Int32Array> {
  return { data: new Int32Array(layers * batch * seq * topK).fill(-1), dims: [layers, batch, seq, topK] };
}

/**
 * export.py's hashed_noise: scale·(2u − 1) with u = (i·2654435761 mod 2³²)/2³²
 * for the flat index i; exact in doubles while i·2654435761 < 2⁵³ (i < 3.4
 * million). No pattern a router could follow, and the same in every language.
 */
export function hashedNoise(count: number, scale: number): Float32Array {
  if (count * 2654435761 >= 2 ** 53) throw new Error(`hashedNoise: ${count} values is beyond exact integer range`);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = scale * (2 * (((i * 2654435761) % 2 ** 32) / 2 ** 32) - 1);
  return out;
}

/** Next-token readout of a [B, S, V] logits tensor, per position. */
export interface NextTokenReadout {
  /** log p(the next input token) at each position, [B, S]; NaN at each sequence's last position. */
  logProbs: Float32Array;
  /** The `top` likeliest next tokens per position, [B, S, top], most likely first. */
  topIds: Int32Array;
  /** Their log-probabilities, [B, S, top]. */
  topLogProbs: Float32Array;
  top: number;
}

/**
 * Log-softmax readout of `logits` [B, S, V] for the input `ids` [B, S]: what
 * the counterfactual and consistency views compare, small enough to post from
 * a worker (the logits themselves are 4096 floats per token).
 */
export function nextTokenReadout(
  logits: Float32Array,
  dims: readonly number[],
  ids: ArrayLike<number>,
  top = 5,
): NextTokenReadout {
  const [B, S, V] = dims;
  const logProbs = new Float32Array(B * S);
  const topIds = new Int32Array(B * S * top);
  const topLogProbs = new Float32Array(B * S * top);
  for (let row = 0; row < B * S; row++) {
    const values = logits.subarray(row * V, (row + 1) * V);
    let max = -Infinity;
    for (let v = 0; v < V; v++) if (values[v] > max) max = values[v];
    let sum = 0;
    for (let v = 0; v < V; v++) sum += Math.exp(values[v] - max);
    const lse = max + Math.log(sum);
    const t = row % S;
    logProbs[row] = t < S - 1 ? values[ids[row + 1]] - lse : NaN;
    // top-n by insertion into a short sorted list (n ≪ V)
    const best: number[] = [];
    for (let v = 0; v < V; v++) {
      if (best.length === top && values[v] <= values[best[top - 1]]) continue;
      let at = best.length;
      while (at > 0 && values[best[at - 1]] < values[v]) at--;
      best.splice(at, 0, v);
      if (best.length > top) best.pop();
    }
    best.forEach((v, j) => {
      topIds[row * top + j] = v;
      topLogProbs[row * top + j] = values[v] - lse;
    });
  }
  return { logProbs, topIds, topLogProbs, top };
}
