/**
 * A `Forward` (counterfactual.ts) over an onnxruntime session held in this
 * thread: onnxruntime-node in the tests, the build-time loader and the bench,
 * onnxruntime-web's WASM in Node for the bench's browser-runtime rows. The
 * page's worker does the same through `ModelClient.forward`.
 */
import type { Forward } from "./counterfactual.js";
import { forwardFeeds, nextTokenReadout, type OverrideShape, type TensorConstructor } from "./route-overrides.js";

/** The part of an onnxruntime module and session this needs (node and web agree on it). */
export interface OrtLike<T> {
  Tensor: TensorConstructor<T>;
}
export interface SessionLike<T> {
  readonly inputNames: readonly string[];
  run(feeds: Record<string, T>): Promise<Record<string, { data: unknown; dims: readonly number[] }>>;
}

export function sessionForward<T>(ort: OrtLike<T>, session: SessionLike<T>, shape: OverrideShape): Forward {
  return async (sequences, overrides = {}) => {
    const batch = sequences.length;
    const seq = sequences[0]?.length ?? 0;
    if (!batch || !seq || sequences.some((s) => s.length !== seq))
      throw new Error("one forward pass takes sequences of one length");
    const ids = Int32Array.from(sequences.flat());
    const out = await session.run(forwardFeeds(ort.Tensor, session.inputNames, shape, ids, batch, seq, overrides));
    const logits = out.logits;
    if (!logits) throw new Error("this model file has no logits output (a router-only graph): load the full graph");
    return {
      router: out.router_logits.data as Float32Array,
      dims: out.router_logits.dims,
      bias: (out.expert_bias?.data as Float32Array | undefined) ?? null,
      next: nextTokenReadout(logits.data as Float32Array, logits.dims, ids),
    };
  };
}
